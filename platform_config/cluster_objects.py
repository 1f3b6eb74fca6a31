"""The Kubernetes objects the platform authors, as plain manifests (``apiVersion``/``kind``/``metadata``/``spec``).

Manifests are the one representation: tests validate them against the Kubernetes schemas of the cluster's
version, and ``modules/common/kubernetes_objects.py`` emits them as kubernetes-provider resources. Infrastructure
values (a KMS key ARN, the EFS id) may be Terraform references inside the strings.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from platform_config.data_layer import EFS_MOUNT_OPTIONS
from platform_config.gpu_sharing import mig_resource
from platform_config.inference_edge import load_balancer_networks
from platform_config.models import Environment, NamespaceQuota
from platform_config.node_labels import GPU_RESOURCE

DATA_DIR = Path(__file__).with_name("data")
POD_SECURITY_LABELS = ("enforce", "audit", "warn")
MESH_DEFAULT_POLICY = "all-authenticated"
#: Per container, when a pod does not say: requests keep the scheduler honest, a memory limit keeps one pod from
#: starving a node of memory (which cannot be taken back). No default CPU limit: CPU is shared by request under
#: contention, a limit only throttles, and a defaulted limit below a container's own request (a server asking for
#: 4 CPUs with no limit) makes the API server refuse the pod. GPU workloads always say what they need.
CONTAINER_DEFAULTS = {"defaultRequest": {"cpu": "100m", "memory": "256Mi"}, "default": {"memory": "1Gi"}}

Manifest = dict[str, Any]
DEFAULT_STORAGE_CLASS = "gp3-encrypted"


@cache
def _data(name: str) -> dict[str, Any]:
    with (DATA_DIR / name).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def application_namespaces() -> dict[str, dict[str, str]]:
    return _data("namespaces.yaml")["application"]


def system_namespaces() -> dict[str, dict[str, str]]:
    return _data("namespaces.yaml")["system"]


def namespace_manifest(name: str, pod_security: str, meshed: bool) -> Manifest:
    labels = {f"pod-security.kubernetes.io/{mode}": pod_security for mode in POD_SECURITY_LABELS}
    if pod_security == "baseline":
        labels["pod-security.kubernetes.io/warn"] = "restricted"
        labels["pod-security.kubernetes.io/audit"] = "restricted"
    annotations = {"linkerd.io/inject": "enabled" if meshed else "disabled"}
    if meshed:
        annotations["config.linkerd.io/default-inbound-policy"] = MESH_DEFAULT_POLICY
    else:
        # The mesh's admission webhooks skip these namespaces entirely.
        labels["config.linkerd.io/admission-webhooks"] = "disabled"
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels, "annotations": annotations}}


def namespaces() -> list[Manifest]:
    """Every namespace the platform creates: the application ones meshed, the system ones not."""
    return ([namespace_manifest(n, s["pod_security"], meshed=True) for n, s in application_namespaces().items()]
            + [namespace_manifest(n, s["pod_security"], meshed=False) for n, s in system_namespaces().items()])


def resource_quota(namespace: str, quota: NamespaceQuota) -> Manifest:
    hard = {"requests.cpu": quota.cpu, "requests.memory": quota.memory,
            f"requests.{GPU_RESOURCE}": str(quota.gpus)}
    hard |= {f"requests.{mig_resource(profile)}": str(count) for profile, count in sorted(quota.mig_slices.items())}
    return {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "compute", "namespace": namespace}, "spec": {"hard": hard}}


def quota_field(namespace: str, key: str) -> str:
    """The field of the environment file that sets the ResourceQuota ``key`` of ``namespace`` (the inverse of
    ``resource_quota``)."""
    resource = key.removeprefix("requests.")
    fields = {"cpu": "cpu", "memory": "memory", GPU_RESOURCE: "gpus"}
    field = fields.get(resource) or f"mig_slices.{resource.removeprefix(mig_resource(''))}"
    return f"platform.namespace_quotas.{namespace}.{field}"


def limit_range(namespace: str) -> Manifest:
    return {"apiVersion": "v1", "kind": "LimitRange",
            "metadata": {"name": "container-defaults", "namespace": namespace},
            "spec": {"limits": [{"type": "Container", **CONTAINER_DEFAULTS}]}}


def _ports(ports: list[str] | None) -> list[dict[str, Any]] | None:
    if not ports:
        return None
    parsed = []
    for port in ports:
        number, protocol = port.split("/")
        parsed.append({"port": int(number), "protocol": protocol})
    return parsed


def address_ranges(environment: Environment) -> dict[str, list[str]]:
    """The CIDR tokens of network_policies.yaml, resolved for one environment."""
    network = environment.network
    private = [str(subnet) for subnet in network.private_subnets]
    public = [str(subnet) for subnet in network.public_subnets]
    wandb = environment.workloads.wandb

    def subnets_of(schemes: set[str]) -> list[str]:
        # The load balancer controller places internal load balancers in the subnets tagged internal-elb (private)
        # and internet-facing ones in those tagged elb (public).
        return (private if "internal" in schemes else []) + (public if "internet-facing" in schemes else [])

    return {"PRIVATE_SUBNETS": private,
            # The inference load balancers are placed in the public subnets whatever their scheme (inference_edge).
            "LOAD_BALANCER_SUBNETS": load_balancer_networks(environment),
            "WANDB_LOAD_BALANCER_SUBNETS": subnets_of({wandb.server.scheme} if wandb.self_managed and wandb.server
                                                      else set()),
            "VPC_RESOLVER": [f"{network.vpc_cidr.network_address + 2}/32"],
            "API_SERVICE_IP": [f"{environment.cluster.service_cidr.network_address + 1}/32"]}


def _peers(rule: dict[str, Any], ranges: dict[str, list[str]]) -> list[dict[str, Any]]:
    if rule.get("same_namespace"):
        return [{"podSelector": {}}]
    if rule.get("all_namespaces"):
        return [{"namespaceSelector": {}}]
    if rule.get("meshed_namespaces"):
        return [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: name}}}
                for name in application_namespaces()]
    if "namespace" in rule:
        peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: rule["namespace"]}}}
        if "pod_labels" in rule:
            peer["podSelector"] = {"matchLabels": rule["pod_labels"]}
        return [peer]
    peers = []
    for cidr in ranges.get(rule["cidr"], [rule["cidr"]]):
        block: dict[str, Any] = {"cidr": cidr}
        if rule.get("except"):
            block["except"] = list(rule["except"])
        peers.append({"ipBlock": block})
    return peers


def _policy(name: str, namespace: str, body: dict[str, Any], ranges: dict[str, list[str]]) -> Manifest:
    pods = {"matchLabels": dict(body["pods"])} if body.get("pods") else {}
    spec: dict[str, Any] = {"podSelector": pods, "policyTypes": []}
    for direction, peer_key in (("ingress", "from"), ("egress", "to")):
        if direction not in body:
            continue
        spec["policyTypes"].append(direction.capitalize())
        entries = []
        for rule in body[direction]:
            peers = _peers(rule, ranges)
            if not peers:
                continue  # a range the environment does not have: an empty peer list would admit everyone
            entry: dict[str, Any] = {peer_key: peers}
            ports = _ports(rule.get("ports"))
            if ports:
                entry["ports"] = ports
            entries.append(entry)
        spec[direction] = entries
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


#: Created by EKS, not by the platform; its controllers (CoreDNS, metrics-server, the load balancer controller,
#: the cluster autoscaler) are guarded like the system namespaces the platform creates.
KUBE_SYSTEM = "kube-system"
#: Where Prometheus runs: the namespace every ``scraped_ports`` entry admits.
MONITORING = "monitoring"
#: The label the API server puts on every namespace (its name): what namespace peers select on.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _generated_rules(namespace: str) -> dict[str, Any]:
    """The allow rules ``scraped_ports`` and ``control_plane_ports`` make for ``namespace``."""
    rules = _data("network_policies.yaml")
    generated: dict[str, Any] = {}
    scraped = rules.get("scraped_ports") or {}
    if namespace in scraped:
        generated["allow-metrics-scraping"] = {"ingress": [{"namespace": MONITORING, "ports": scraped[namespace]}]}
    if namespace == MONITORING and scraped:
        generated["allow-scraping"] = {"egress": [{"namespace": target, "ports": ports}
                                                  for target, ports in sorted(scraped.items())]}
    webhooks = (rules.get("control_plane_ports") or {}).get(namespace)
    if webhooks:
        generated["allow-control-plane"] = {"ingress": [{"cidr": "PRIVATE_SUBNETS", "ports": webhooks}]}
    return generated


def network_policies(namespace: str, ranges: dict[str, list[str]], *, system: bool = False) -> list[Manifest]:
    """Default-deny for all traffic in and out, then the platform's allow rules for this namespace (the system
    namespaces' common rules when ``system``). ``ranges`` resolves the CIDR tokens (``address_ranges``)."""
    deny = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
    rules = _data("network_policies.yaml")
    allowed = {**rules["system_common" if system else "common"], **rules["per_namespace"].get(namespace, {}),
               **_generated_rules(namespace)}
    return [deny, *(_policy(name, namespace, body, ranges) for name, body in allowed.items())]


def namespace_guardrails(environment: Environment) -> list[Manifest]:
    """Per application namespace: its quota, container defaults and network policies; per system namespace
    (kube-system included): its network policies."""
    manifests = []
    ranges = address_ranges(environment)
    for namespace in application_namespaces():
        manifests.append(resource_quota(namespace, environment.platform.namespace_quotas[namespace]))
        manifests.append(limit_range(namespace))
        manifests.extend(network_policies(namespace, ranges))
    for namespace in [KUBE_SYSTEM, *system_namespaces()]:
        manifests.extend(network_policies(namespace, ranges, system=True))
    return manifests


def storage_classes(*, volume_key_arn: str, file_system_id: str, retain: bool) -> list[Manifest]:
    """gp3 EBS encrypted with the cluster's key (the default class) and EFS with a dynamic access point per volume.
    ``retain`` keeps the volume when its claim is deleted (protected environments)."""
    reclaim = "Retain" if retain else "Delete"
    gp3 = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
           "metadata": {"name": DEFAULT_STORAGE_CLASS,
                        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
           "provisioner": "ebs.csi.aws.com", "reclaimPolicy": reclaim, "volumeBindingMode": "WaitForFirstConsumer",
           "allowVolumeExpansion": True,
           "parameters": {"type": "gp3", "encrypted": "true", "kmsKeyId": volume_key_arn}}
    efs = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "efs-dynamic"},
           "provisioner": "efs.csi.aws.com", "reclaimPolicy": reclaim, "volumeBindingMode": "Immediate",
           "mountOptions": list(EFS_MOUNT_OPTIONS),
           "parameters": {"provisioningMode": "efs-ap", "fileSystemId": file_system_id, "directoryPerms": "0770",
                          "basePath": "/dynamic", "uid": "1000", "gid": "1000"}}
    return [gp3, efs]
