"""The inference edge as AWS, the load balancer controller and Linkerd will apply it, read from the synthesized
stacks of every environment: TLS listeners with the environment's certificate (plain only below the prod tier),
load balancers that admit only the client networks the environment names and live in the public subnets, nodes
that admit no address range, and a mesh that admits the load balancers by their subnets and in-cluster callers by
their identity, never the subnets of the nodes and pods."""

from __future__ import annotations

import json
from ipaddress import ip_network
from urllib.parse import urlsplit

import pytest
import yaml

from platform_config.models import Tier
from tests_support import ENVIRONMENT_NAMES, application_manifests, resources

ALB = "alb.ingress.kubernetes.io"
NLB = "service.beta.kubernetes.io/aws-load-balancer"
POLICY_API = "policy.linkerd.io"


def helm_values(stack: dict) -> dict[str, dict]:
    return {r["name"]: yaml.safe_load(r["values"][0]) for r in resources(stack, "helm_release").values()}


def delivered_manifests(stack: dict) -> list[dict]:
    """Every manifest the stack delivers through the manifests chart, Argo CD Applications' manifests included."""
    found = []
    for release in resources(stack, "helm_release").values():
        if release["chart"] != "raw":
            continue
        for manifest in yaml.safe_load(release["values"][0])["resources"]:
            found.append(manifest)
            if manifest["kind"] == "Application":
                found += application_manifests(manifest)
    return found


def of_kind(manifests: list[dict], kind: str, namespace: str | None = None) -> dict[str, dict]:
    return {m["metadata"]["name"]: m for m in manifests
            if m["kind"] == kind and (namespace is None or m["metadata"].get("namespace") == namespace)}


def load_balancers(manifests: list[dict]) -> tuple[dict, dict[str, dict]]:
    """The inference ALB Ingress and the NLB Services (by name)."""
    [ingress] = of_kind(manifests, "Ingress", "inference").values()
    services = {name: s for name, s in of_kind(manifests, "Service", "inference").items()
                if s["spec"].get("type") == "LoadBalancer"}
    return ingress, services


def public_subnets(stacks: dict, env_name: str) -> dict[str, str]:
    """Name tag -> CIDR of the subnets the network layer tags for internet-facing load balancers."""
    return {body["tags"]["Name"]: body["cidr_block"] for body in resources(stacks[f"{env_name}-network"],
                                                                           "aws_subnet").values()
            if body["tags"].get("kubernetes.io/role/elb") == "1"}


def private_subnets(stacks: dict, env_name: str) -> list[str]:
    return [body["cidr_block"] for body in resources(stacks[f"{env_name}-network"], "aws_subnet").values()
            if body["tags"].get("kubernetes.io/role/internal-elb") == "1"]


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_every_inference_listener_is_tls_with_the_environments_certificate_and_plain_only_below_prod(
        stacks, environments, env_name):
    env = environments[env_name]
    ingress, services = load_balancers(delivered_manifests(stacks[f"{env_name}-workloads"]))
    annotations = ingress["metadata"]["annotations"]
    # The controller makes one listener per listen-ports entry: HTTPS ones terminate TLS with certificate-arn.
    protocols = {protocol for entry in json.loads(annotations[f"{ALB}/listen-ports"]) for protocol in entry}
    certificate = env.workloads.inference.http.certificate_arn
    if certificate:
        assert protocols == {"HTTPS"}, protocols
        assert annotations[f"{ALB}/certificate-arn"] == certificate
        assert annotations[f"{ALB}/ssl-policy"].startswith("ELBSecurityPolicy-TLS13")
    else:
        assert env.tier is not Tier.PROD and annotations[f"{ALB}/scheme"] == "internal"
        assert f"{ALB}/certificate-arn" not in annotations
    for name, service in services.items():
        service_annotations = service["metadata"]["annotations"]
        ports = {str(p["port"]) for p in service["spec"]["ports"]}
        grpc_certificate = env.workloads.inference.tcp.certificate_arn
        if grpc_certificate:
            # An NLB listener is TLS exactly when its port is among ssl-ports.
            assert set(service_annotations[f"{NLB}-ssl-ports"].split(",")) >= ports, name
            assert service_annotations[f"{NLB}-ssl-cert"] == grpc_certificate, name
        else:
            assert env.tier is not Tier.PROD and service_annotations[f"{NLB}-scheme"] == "internal", name
            assert f"{NLB}-ssl-ports" not in service_annotations, name
    if env.tier is Tier.PROD:
        assert certificate and (not services or env.workloads.inference.tcp.certificate_arn)


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_load_balancers_admit_only_the_client_networks_the_environment_names(stacks, environments, env_name):
    """Without inbound-cidrs (ALB) or source ranges (NLB) the controller's security group admits 0.0.0.0/0; an
    internal load balancer reachable from the pods' subnets would let any pod around the mesh's identity check."""
    env = environments[env_name]
    ingress, services = load_balancers(delivered_manifests(stacks[f"{env_name}-workloads"]))
    inference = env.workloads.inference
    exposures = [(ingress, ingress["metadata"]["annotations"].get(f"{ALB}/inbound-cidrs", "").split(","),
                  inference.http)]
    exposures += [(service, service["spec"].get("loadBalancerSourceRanges") or [], inference.tcp)
                  for service in services.values()]
    for balancer, sources, exposure in exposures:
        name = balancer["metadata"]["name"]
        assert [s for s in sources if s], f"{name} names no source: the controller would admit 0.0.0.0/0"
        assert sorted(sources) == sorted(map(str, exposure.clients)), name
        if exposure.scheme == "internal":
            assert not [s for s in sources for subnet in private_subnets(stacks, env_name)
                        if ip_network(s).overlaps(ip_network(subnet))], name
        assert not {f"{ALB}/security-groups", f"{NLB}-security-groups"} & set(balancer["metadata"]["annotations"]), \
            f"{name}: a security group of our own would replace the controller's and its backend rules"


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_load_balancers_live_in_the_public_subnets_and_the_mesh_admits_only_those(stacks, env_name):
    subnets = public_subnets(stacks, env_name)
    assert subnets
    manifests = delivered_manifests(stacks[f"{env_name}-workloads"])
    ingress, services = load_balancers(manifests)
    placements = [ingress["metadata"]["annotations"][f"{ALB}/subnets"],
                  *(s["metadata"]["annotations"][f"{NLB}-subnets"] for s in services.values())]
    for placement in placements:
        assert sorted(placement.split(",")) == sorted(subnets)
    # NLB targets see the client's address unless preservation is off; the mesh admits the NLB's own address.
    for service in services.values():
        assert "preserve_client_ip.enabled=false" in service["metadata"]["annotations"][
            f"{NLB}-target-group-attributes"].split(",")
    networks = [n["cidr"] for auth in of_kind(manifests, "NetworkAuthentication", "inference").values()
                for n in auth["spec"]["networks"]]
    assert sorted(networks) == sorted(subnets.values())


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_no_network_authentication_admits_the_subnets_of_the_nodes_and_pods(stacks, environments, env_name):
    """A NetworkAuthentication admits plain traffic by address: over the VPC or a private subnet it would admit
    every unmeshed pod and node, which is what mTLS is there to refuse."""
    vpc = ip_network(str(environments[env_name].network.vpc_cidr))
    inside = [ip_network(s) for s in private_subnets(stacks, env_name)]
    assert inside
    authentications = [m for layer in ("platform", "workloads")
                       for m in delivered_manifests(stacks[f"{env_name}-{layer}"])
                       if m["kind"] == "NetworkAuthentication"]
    assert authentications
    for authentication in authentications:
        for network in authentication["spec"]["networks"]:
            cidr = ip_network(network["cidr"])
            assert not cidr.supernet_of(vpc), authentication["metadata"]
            assert not [s for s in inside if cidr.overlaps(s)], authentication["metadata"]


def _authentications_of(server: str, manifests: list[dict]) -> list[dict]:
    """The authentications an AuthorizationPolicy requires for traffic to ``server``."""
    found = []
    for policy in of_kind(manifests, "AuthorizationPolicy", "inference").values():
        target = policy["spec"]["targetRef"]
        if (target.get("group"), target["kind"], target["name"]) == (POLICY_API, "Server", server):
            found += policy["spec"]["requiredAuthenticationRefs"]
    return found


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_every_agent_that_calls_a_deployment_is_named_by_identity_on_its_server(stacks, env_name):
    """Follow the agents' OPENAI_BASE_URL to the Service, its target port to the Linkerd Server that selects those
    pods on that port, and that Server's authorizations to a MeshTLSAuthentication naming every agent's mTLS
    identity (``<service account>.<namespace>.serviceaccount.identity.linkerd.<trust domain>``)."""
    manifests = delivered_manifests(stacks[f"{env_name}-workloads"])
    trust_domain = helm_values(stacks[f"{env_name}-platform"])["linkerd-control-plane"]["identityTrustDomain"]
    url = urlsplit(of_kind(manifests, "ConfigMap", "agentic")["agent-settings"]["data"]["OPENAI_BASE_URL"])
    service_name, namespace = url.hostname.split(".")[:2]
    service = of_kind(manifests, "Service", namespace)[service_name]
    [target_port] = [p["targetPort"] for p in service["spec"]["ports"] if p["port"] == url.port]
    selector = service["spec"]["selector"]
    [server] = [name for name, s in of_kind(manifests, "Server", namespace).items()
                if s["spec"]["port"] == target_port
                and s["spec"]["podSelector"]["matchLabels"].items() <= selector.items()]
    assert of_kind(manifests, "Server", namespace)[server]["spec"]["accessPolicy"] == "deny"
    meshed = of_kind(manifests, "MeshTLSAuthentication", namespace)
    identities = {identity for ref in _authentications_of(server, manifests)
                  if ref["kind"] == "MeshTLSAuthentication" for identity in meshed[ref["name"]]["spec"]["identities"]}
    agents = {d["spec"]["template"]["spec"]["serviceAccountName"]
              for d in of_kind(manifests, "Deployment", "agentic").values()}
    assert agents
    assert {f"{account}.agentic.serviceaccount.identity.linkerd.{trust_domain}" for account in agents} <= identities
    assert "*" not in identities


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_every_port_a_load_balancer_targets_is_a_denying_server_open_to_the_load_balancers_only_by_address(
        stacks, env_name):
    manifests = delivered_manifests(stacks[f"{env_name}-workloads"])
    ingress, services = load_balancers(manifests)
    backends = {(p["backend"]["service"]["name"], p["backend"]["service"]["port"]["name"])
                for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    backends |= {(s["spec"]["selector"]["app.kubernetes.io/name"], p["targetPort"])
                 for s in services.values() for p in s["spec"]["ports"]}
    servers = {(s["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], s["spec"]["port"]): name
               for name, s in of_kind(manifests, "Server", "inference").items()}
    networks = of_kind(manifests, "NetworkAuthentication", "inference")
    for backend in backends:
        server = servers[backend]
        assert of_kind(manifests, "Server", "inference")[server]["spec"]["accessPolicy"] == "deny"
        by_address = [ref["name"] for ref in _authentications_of(server, manifests)
                      if ref["kind"] == "NetworkAuthentication"]
        assert by_address and all(name in networks for name in by_address), server


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_nodes_admit_load_balancers_through_the_controllers_backend_group_and_no_address_range(stacks, env_name):
    """Pods use their node's security group (VPC CNI): it admits other groups only, so the load balancer reaches
    a serving port only through the rules the controller adds from its shared backend group."""
    cluster = stacks[f"{env_name}-cluster"]
    [cluster_name] = [body["name"] for body in resources(cluster, "aws_eks_cluster").values()]
    # The controller adds its rules to the one group of a target's ENI tagged as owned by the cluster.
    [nodes] = [name for name, group in resources(cluster, "aws_security_group").items()
               if group.get("tags", {}).get(f"kubernetes.io/cluster/{cluster_name}") == "owned"]
    rules = [rule for rule in resources(cluster, "aws_vpc_security_group_ingress_rule").values()
             if rule["security_group_id"] == f"${{aws_security_group.{nodes}.id}}"]
    assert rules
    for rule in rules:
        assert rule.get("referenced_security_group_id") and not (rule.get("cidr_ipv4") or rule.get("cidr_ipv6")), rule
    controller = helm_values(stacks[f"{env_name}-platform"])["aws-load-balancer-controller"]
    assert controller["enableBackendSecurityGroup"] is True
    assert controller["disableRestrictedSecurityGroupRules"] is False
