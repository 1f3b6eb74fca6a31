"""Checks that join resources, run by the gate itself over each environment's stacks (``<env>-<layer>``).

checkov's Python checks see one resource at a time, and its graph checks cannot read a reviewed data file. These
rules need both: who a policy association grants (its access entry), which role a Pod Identity association binds
(the role's name), which namespaces exist (namespace resources, Helm releases in any layer, kube-system) and
whether each has a default-deny NetworkPolicy, whether the cluster's CNI enforces those policies, and what the
manifests a release delivers (Argo CD Applications' templates included) say, judged against the environment's VPC
(the inference edge: CKV_PLAT_35, 36). The gate
reports their results like checkov's (same ids scheme, skips, summary and SARIF); each check's ``why`` is the
line the gate prints next to a failure.

``run(documents, viewer_principals, data_dir)`` takes the stacks' prepared JSON by stack name, the reviewed viewer
principals by environment name (``environments/<env>.yaml`` cluster.viewer_principals) and the folder of
platform_config's data files.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Check:
    id: str
    name: str
    why: str


@dataclass(frozen=True)
class Finding:
    check: Check
    stack: str
    resource: str
    passed: bool
    details: tuple[str, ...] = ()


VIEWER_ACCESS = Check(
    "CKV_PLAT_31", "EKS plan and viewer principals get view access policies only",
    "a read-only principal (the pull-request plan role, a viewer) upgraded to an admin policy lets any pull request "
    "or viewer change or delete everything in the cluster")
POD_IDENTITY = Check(
    "CKV_PLAT_32", "Pod Identity associations bind each reviewed role only to its own namespace and service account",
    "a controller's or workload's role bound to another namespace hands its AWS permissions (load balancers, "
    "autoscaling groups, secrets) to whatever runs there")
DEFAULT_DENY = Check(
    "CKV_PLAT_33", "Every namespace (kube-system and every release's namespace included) has a default-deny "
    "NetworkPolicy",
    "without default-deny any pod reaches the namespace's pods (controllers with cloud credentials, webhooks, the "
    "mesh's identity service) and they reach anything, the node's metadata service included")
CNI_ENFORCES = Check(
    "CKV_PLAT_34", "The cluster's vpc-cni add-on enforces NetworkPolicies (enableNetworkPolicy \"true\")",
    "without the VPC CNI's network policy agent every NetworkPolicy is accepted by the API server and enforced "
    "by nothing: default-deny exists on paper only")
MESH_ADDRESS_AUTHENTICATION = Check(
    "CKV_PLAT_35", "Linkerd NetworkAuthentications admit no address of the VPC outside its public subnets",
    "a NetworkAuthentication lets plain, unauthenticated traffic in by source address: over the VPC or a private "
    "subnet it admits every unmeshed pod and node, which the mesh's mTLS is there to refuse; only the load "
    "balancers (in the public subnets) need it")
LOAD_BALANCER_EDGE = Check(
    "CKV_PLAT_36", "Load balancers of delivered Ingresses and Services name their client sources and, with a "
    "certificate, listen on TLS only",
    "without inbound-cidrs or source ranges the load balancer controller opens the load balancer to 0.0.0.0/0; a "
    "plain listener beside a TLS one (even a redirect) receives API keys in clear")
CHECKS = (VIEWER_ACCESS, POD_IDENTITY, DEFAULT_DENY, CNI_ENFORCES, MESH_ADDRESS_AUTHENTICATION, LOAD_BALANCER_EDGE)
ALB = "alb.ingress.kubernetes.io"
NLB = "service.beta.kubernetes.io/aws-load-balancer"
OPEN_TO_ALL = frozenset({"0.0.0.0/0", "::/0"})

VIEW_POLICIES = frozenset({"arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
                           "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminViewPolicy"})
#: The delivery layer's pull-request plan role (modules/delivery: ``<prefix>-github-plan``) is a viewer wherever
#: it appears.
_PLAN_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/(.*/)?[A-Za-z0-9+=,.@_-]*-github-plan$")
_REFERENCE = re.compile(r"^\$\{(?P<type>[a-z0-9_]+)\.(?P<name>[^.}]+)\.(?P<attribute>[^}]+)\}$")
NAMESPACE_TYPES = ("kubernetes_namespace_v1", "kubernetes_namespace")
NETWORK_POLICY_TYPES = ("kubernetes_network_policy_v1", "kubernetes_network_policy")
SYSTEM_NAMESPACE = "kube-system"


def _resources(document: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    found = (document.get("resource") or {}).get(resource_type) or {}
    return {name: body for name, body in found.items() if isinstance(body, dict)}


def _first(value: Any) -> Any:
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def _resolve(document: dict[str, Any], value: Any, resource_type: str, attribute: str) -> Any:
    """``${<resource_type>.<name>.<attribute>}`` replaced by that attribute of the stack's resource when it is
    written there; anything else as it is."""
    match = _REFERENCE.match(value) if isinstance(value, str) else None
    if match and match["type"] == resource_type and match["attribute"] == attribute:
        return _first(_resources(document, resource_type).get(match["name"], {}).get(attribute.split("[")[0]))
    return value


def _environment(stack: str) -> str:
    return stack.rsplit("-", 1)[0]


def viewer_access(documents: dict[str, dict[str, Any]], viewers: dict[str, set[str]]) -> Iterator[Finding]:
    for stack, document in documents.items():
        for name, body in sorted(_resources(document, "aws_eks_access_policy_association").items()):
            address = f"aws_eks_access_policy_association.{name}"
            principal = _resolve(document, body.get("principal_arn"), "aws_eks_access_entry", "principal_arn")
            policy = body.get("policy_arn")
            if not isinstance(principal, str) or "${" in principal:
                yield Finding(VIEWER_ACCESS, stack, address, False,
                              (f"principal_arn {principal!r} is neither an ARN nor an access entry's ARN of this "
                               "stack: whose access it grants cannot be reviewed",))
                continue
            viewer = principal in viewers.get(_environment(stack), set()) or bool(_PLAN_ROLE.match(principal))
            if viewer and policy not in VIEW_POLICIES:
                yield Finding(VIEWER_ACCESS, stack, address, False,
                              (f"{principal} is a plan or viewer principal but gets {policy}",))
            else:
                yield Finding(VIEWER_ACCESS, stack, address, True)


def _identities(data_dir: Path) -> dict[str, tuple[str, str]]:
    """Reviewed Pod Identity name -> (namespace, service account): the controllers' and the workloads'."""
    identities = {}
    for file in ("controller_identities.yaml", "workload_identities.yaml"):
        for name, entry in (yaml.safe_load((data_dir / file).read_text(encoding="utf-8")) or {}).items():
            identities[name] = (entry["namespace"], entry["service_account"])
    return identities


def _role_name(document: dict[str, Any], role_arn: Any) -> str | None:
    match = _REFERENCE.match(role_arn) if isinstance(role_arn, str) else None
    if match and match["type"] == "aws_iam_role" and match["attribute"] == "arn":
        name = _first(_resources(document, "aws_iam_role").get(match["name"], {}).get("name"))
        return name if isinstance(name, str) else None
    if isinstance(role_arn, str) and ":role/" in role_arn:
        return role_arn.rsplit("/", 1)[-1]
    return None


def pod_identity(documents: dict[str, dict[str, Any]], data_dir: Path) -> Iterator[Finding]:
    identities = _identities(data_dir)
    # Longest first: a role <cluster>-external-secrets must not be taken for an identity named "secrets".
    by_length = sorted(identities, key=len, reverse=True)
    for stack, document in documents.items():
        for name, body in sorted(_resources(document, "aws_eks_pod_identity_association").items()):
            address = f"aws_eks_pod_identity_association.{name}"
            role = _role_name(document, body.get("role_arn"))
            identity = next((i for i in by_length if role and (role == i or role.endswith(f"-{i}"))), None)
            bound = (body.get("namespace"), body.get("service_account"))
            if identity is None:
                yield Finding(POD_IDENTITY, stack, address, False,
                              (f"role {role or body.get('role_arn')!r} is no reviewed identity of "
                               "platform_config/data/controller_identities.yaml or workload_identities.yaml",))
            elif bound != identities[identity]:
                namespace, account = identities[identity]
                yield Finding(POD_IDENTITY, stack, address, False,
                              (f"the {identity} role is bound to {bound[0]}/{bound[1]}, reviewed for "
                               f"{namespace}/{account}",))
            else:
                yield Finding(POD_IDENTITY, stack, address, True)


def _namespace_name(document: dict[str, Any], value: Any) -> Any:
    for resource_type in NAMESPACE_TYPES:
        match = _REFERENCE.match(value) if isinstance(value, str) else None
        if match and match["type"] == resource_type:
            metadata = _first(_resources(document, resource_type).get(match["name"], {}).get("metadata")) or {}
            return metadata.get("name")
    return value


def _is_default_deny(spec: dict[str, Any]) -> bool:
    selector = _first(spec.get("pod_selector")) or {}
    types = spec.get("policy_types") or []
    return (not selector.get("match_labels") and not selector.get("match_expressions")
            and {"Ingress", "Egress"} <= set(types) and not spec.get("ingress") and not spec.get("egress"))


def default_deny(documents: dict[str, dict[str, Any]]) -> Iterator[Finding]:
    for environment in sorted({_environment(stack) for stack in documents}):
        stacks = {s: d for s, d in documents.items() if _environment(s) == environment}
        owners: dict[str, tuple[str, str]] = {}  # namespace -> (stack, address) the finding names
        denied: set[str] = set()
        for stack, document in stacks.items():
            for resource_type in NAMESPACE_TYPES:
                for name, body in _resources(document, resource_type).items():
                    namespace = (_first(body.get("metadata")) or {}).get("name")
                    if isinstance(namespace, str):
                        owners[namespace] = (stack, f"{resource_type}.{name}")
            for resource_type in NETWORK_POLICY_TYPES:
                for body in _resources(document, resource_type).values():
                    metadata, spec = _first(body.get("metadata")) or {}, _first(body.get("spec")) or {}
                    namespace = _namespace_name(document, metadata.get("namespace"))
                    if isinstance(namespace, str) and _is_default_deny(spec):
                        denied.add(namespace)
        for stack, document in sorted(stacks.items()):
            for name, body in sorted(_resources(document, "helm_release").items()):
                namespace = _namespace_name(document, body.get("namespace") or "default")
                if isinstance(namespace, str):
                    owners.setdefault(namespace, (stack, f"helm_release.{name}"))
            for name in sorted(_resources(document, "aws_eks_cluster")):
                owners.setdefault(SYSTEM_NAMESPACE, (stack, f"aws_eks_cluster.{name}"))
        for namespace, (stack, address) in sorted(owners.items()):
            if namespace in denied:
                yield Finding(DEFAULT_DENY, stack, address, True)
            else:
                yield Finding(DEFAULT_DENY, stack, address, False,
                              (f"namespace {namespace} has no NetworkPolicy selecting all pods for Ingress and "
                               "Egress without rules",))


def _enables_network_policy(configuration: Any) -> bool:
    try:
        values = json.loads(configuration) if isinstance(configuration, str) else configuration
    except ValueError:
        return False
    return isinstance(values, dict) and str(values.get("enableNetworkPolicy")).lower() == "true"


def cni_enforces(documents: dict[str, dict[str, Any]]) -> Iterator[Finding]:
    for stack, document in documents.items():
        addons = _resources(document, "aws_eks_addon")
        for cluster in sorted(_resources(document, "aws_eks_cluster")):
            reference = f"${{aws_eks_cluster.{cluster}.name}}"
            vpc_cni = sorted(name for name, body in addons.items()
                             if body.get("addon_name") == "vpc-cni" and body.get("cluster_name") == reference)
            if not vpc_cni:
                yield Finding(CNI_ENFORCES, stack, f"aws_eks_cluster.{cluster}", False,
                              ("no vpc-cni add-on: the self-managed CNI EKS installs enforces no NetworkPolicy",))
            for name in vpc_cni:
                configuration = addons[name].get("configuration_values")
                enforced = _enables_network_policy(configuration)
                yield Finding(CNI_ENFORCES, stack, f"aws_eks_addon.{name}", enforced,
                              () if enforced else (f"configuration_values {configuration!r} does not set "
                                                   "enableNetworkPolicy to \"true\"",))


_HELM_EXPRESSION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
#: libyaml's parser where PyYAML has it.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def _parsed_yaml(text: str) -> Any:
    """A values or template text parsed once per gate run: several checks read each release, and the gated
    folders of one run share most of their releases. The result is shared: read it, never change it."""
    return yaml.load(text, Loader=_YAML_LOADER)


def _delivered_manifests(values: Any) -> Iterator[dict[str, Any]]:
    """The manifests a manifests-chart release delivers (its values' ``resources``), and those of the Argo CD
    Applications among them (their chart source's ``templates``, Helm expressions blanked)."""
    texts = values if isinstance(values, list) else [values]
    for text in texts:
        text = _first(text)
        try:
            document = _parsed_yaml(text) if isinstance(text, str) else text
        except yaml.YAMLError:
            continue
        listed = document.get("resources") if isinstance(document, dict) else None
        for manifest in listed if isinstance(listed, list) else []:
            if not isinstance(manifest, dict):
                continue
            yield manifest
            if manifest.get("kind") != "Application":
                continue
            for source in (manifest.get("spec") or {}).get("sources") or []:
                templates = ((source.get("helm") or {}).get("valuesObject") or {}).get("templates") or []
                for template in templates:
                    try:
                        inner = _parsed_yaml(_HELM_EXPRESSION.sub("templated", template))
                    except yaml.YAMLError:
                        continue
                    if isinstance(inner, dict):
                        yield inner


def _reference_name(value: Any, resource_type: str) -> str | None:
    match = _REFERENCE.match(value) if isinstance(value, str) else None
    return match["name"] if match and match["type"] == resource_type else None


def _vpc_layout(stacks: dict[str, dict[str, Any]]) -> tuple[list[Any], list[Any], list[Any]]:
    """The VPC CIDRs, and the CIDRs of its public subnets (their route table sends 0.0.0.0/0 to an internet
    gateway) and of the others, from the environment's stacks."""
    vpcs, public, private = [], [], []
    for document in stacks.values():
        vpcs += [ipaddress.ip_network(_first(b.get("cidr_block"))) for b in _resources(document, "aws_vpc").values()
                 if isinstance(_first(b.get("cidr_block")), str) and "${" not in _first(b.get("cidr_block"))]
        to_internet = {_reference_name(b.get("route_table_id"), "aws_route_table")
                       for b in _resources(document, "aws_route").values()
                       if b.get("destination_cidr_block") == "0.0.0.0/0"
                       and _reference_name(b.get("gateway_id"), "aws_internet_gateway")}
        public_subnets = {_reference_name(b.get("subnet_id"), "aws_subnet")
                          for b in _resources(document, "aws_route_table_association").values()
                          if _reference_name(b.get("route_table_id"), "aws_route_table") in to_internet}
        for name, body in _resources(document, "aws_subnet").items():
            cidr = _first(body.get("cidr_block"))
            if isinstance(cidr, str) and "${" not in cidr:
                (public if name in public_subnets else private).append(ipaddress.ip_network(cidr))
    return vpcs, public, private


def mesh_address_authentication(documents: dict[str, dict[str, Any]]) -> Iterator[Finding]:
    for environment in sorted({_environment(stack) for stack in documents}):
        stacks = {s: d for s, d in documents.items() if _environment(s) == environment}
        vpcs, _, private = _vpc_layout(stacks)
        for stack, document in sorted(stacks.items()):
            for name, body in sorted(_resources(document, "helm_release").items()):
                authentications = [m for m in _delivered_manifests(body.get("values"))
                                   if m.get("kind") == "NetworkAuthentication"]
                if not authentications:
                    continue
                problems = []
                if not vpcs:
                    problems.append(f"no VPC in the stacks of {environment}: the networks of "
                                    f"{len(authentications)} NetworkAuthentication(s) cannot be judged")
                for authentication in authentications:
                    label = "{}/{}".format((authentication.get("metadata") or {}).get("namespace"),
                                           (authentication.get("metadata") or {}).get("name"))
                    for network in (authentication.get("spec") or {}).get("networks") or []:
                        try:
                            cidr = ipaddress.ip_network(str(network.get("cidr")), strict=False)
                        except ValueError:
                            problems.append(f"{label}: {network.get('cidr')!r} is not a literal CIDR")
                            continue
                        covered = [str(v) for v in vpcs if cidr.version == v.version and cidr.supernet_of(v)]
                        inside = [str(s) for s in private if cidr.version == s.version and cidr.overlaps(s)]
                        if covered:
                            problems.append(f"{label}: {cidr} covers the whole VPC {', '.join(covered)}")
                        elif inside:
                            problems.append(f"{label}: {cidr} admits the non-public subnet(s) {', '.join(inside)}")
                yield Finding(MESH_ADDRESS_AUTHENTICATION, stack, f"helm_release.{name}", not problems,
                              tuple(problems))


def _split(value: Any) -> list[str]:
    return [part.strip() for part in str(value or "").split(",") if part.strip()]


def _source_problems(label: str, sources: list[str], *, named_as: str, security_groups: Any,
                     internal: bool) -> Iterator[str]:
    """The sources a load balancer admits: named (or security groups), and never everyone when internal."""
    if not sources and not security_groups:
        yield f"{label}: no {named_as} (nor security-groups): the controller admits 0.0.0.0/0"
    if internal and OPEN_TO_ALL & set(sources):
        yield f"{label}: an internal load balancer open to {', '.join(sorted(OPEN_TO_ALL & set(sources)))}"


def _ingress_problems(label: str, annotations: dict[str, Any]) -> Iterator[str]:
    sources = _split(annotations.get(f"{ALB}/inbound-cidrs"))
    internal = annotations.get(f"{ALB}/scheme", "internal") == "internal"
    certificate = annotations.get(f"{ALB}/certificate-arn")
    yield from _source_problems(label, sources, named_as="inbound-cidrs",
                                security_groups=annotations.get(f"{ALB}/security-groups"), internal=internal)
    try:
        listeners = {protocol for entry in json.loads(annotations.get(f"{ALB}/listen-ports") or "[]")
                     for protocol in entry}
    except (ValueError, TypeError, AttributeError):
        listeners = {"unreadable"}
    if certificate and listeners - {"HTTPS"}:
        yield f"{label}: a certificate, but listeners {', '.join(sorted(listeners))}: TLS only (HTTPS)"
    if not internal and not certificate:
        yield f"{label}: internet-facing without certificate-arn: TLS is required"


def _service_problems(label: str, annotations: dict[str, Any], spec: dict[str, Any]) -> Iterator[str]:
    sources = [str(s) for s in spec.get("loadBalancerSourceRanges") or []]
    sources += _split(annotations.get("service.beta.kubernetes.io/load-balancer-source-ranges"))
    internal = annotations.get(f"{NLB}-scheme", "internal") == "internal"
    certificate = annotations.get(f"{NLB}-ssl-cert")
    yield from _source_problems(label, sources, named_as="loadBalancerSourceRanges",
                                security_groups=annotations.get(f"{NLB}-security-groups"), internal=internal)
    ports = {str(p.get("port")) for p in spec.get("ports") or [] if isinstance(p, dict)}
    tls_ports = set(_split(annotations.get(f"{NLB}-ssl-ports")))
    if certificate and "*" not in tls_ports and ports - tls_ports:
        yield f"{label}: a certificate, but port(s) {', '.join(sorted(ports - tls_ports))} are not TLS (ssl-ports)"
    if not internal and not certificate:
        yield f"{label}: internet-facing without ssl-cert: TLS is required"


def load_balancer_edge(documents: dict[str, dict[str, Any]]) -> Iterator[Finding]:
    for stack, document in sorted(documents.items()):
        for name, body in sorted(_resources(document, "helm_release").items()):
            problems, balancers = [], 0
            for manifest in _delivered_manifests(body.get("values")):
                metadata, spec = manifest.get("metadata") or {}, manifest.get("spec") or {}
                annotations = metadata.get("annotations") or {}
                label = f"{manifest.get('kind')} {metadata.get('namespace')}/{metadata.get('name')}"
                if manifest.get("kind") == "Ingress" and (spec.get("ingressClassName") == "alb"
                                                          or any(k.startswith(f"{ALB}/") for k in annotations)):
                    balancers += 1
                    problems += _ingress_problems(label, annotations)
                elif manifest.get("kind") == "Service" and spec.get("type") == "LoadBalancer":
                    balancers += 1
                    problems += _service_problems(label, annotations, spec)
            if balancers:
                yield Finding(LOAD_BALANCER_EDGE, stack, f"helm_release.{name}", not problems, tuple(problems))


def run(documents: dict[str, dict[str, Any]], viewer_principals: dict[str, set[str]],
        data_dir: Path) -> list[Finding]:
    return [*viewer_access(documents, viewer_principals), *pod_identity(documents, data_dir),
            *default_deny(documents), *cni_enforces(documents), *mesh_address_authentication(documents),
            *load_balancer_edge(documents)]
