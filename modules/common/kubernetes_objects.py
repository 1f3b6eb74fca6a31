"""Emit the platform's Kubernetes manifests (``platform_config.cluster_objects``) as kubernetes-provider resources.

Built-in kinds only (Namespace, ResourceQuota, LimitRange, NetworkPolicy, StorageClass): their typed resources
plan without a reachable cluster. Custom resources go through Helm (see ``modules/common/helm_release.py``).
Nested blocks are built from the generated struct classes: plain dicts inside lists would be dropped by jsii.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from cdktf import ITerraformDependable, TerraformResource
from cdktf_cdktf_provider_kubernetes import (
    limit_range_v1,
    namespace_v1,
    network_policy_v1,
    resource_quota_v1,
    storage_class_v1,
)
from constructs import Construct

Manifest = dict[str, Any]


def _resource_id(manifest: Manifest) -> str:
    meta = manifest["metadata"]
    parts = [manifest["kind"].lower(), meta.get("namespace", ""), meta["name"]]
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(p for p in parts if p))


def _selector(struct: type, selector: dict[str, Any] | None):
    return None if selector is None else struct(match_labels=selector.get("matchLabels") or None)


def _peers(direction: str, peers: list[dict[str, Any]]) -> list:
    prefix = "NetworkPolicyV1SpecIngressFrom" if direction == "ingress" else "NetworkPolicyV1SpecEgressTo"
    peer_struct = getattr(network_policy_v1, prefix)
    built = []
    for peer in peers:
        block = peer.get("ipBlock")
        built.append(peer_struct(
            namespace_selector=_selector(getattr(network_policy_v1, f"{prefix}NamespaceSelector"),
                                         peer.get("namespaceSelector")),
            pod_selector=_selector(getattr(network_policy_v1, f"{prefix}PodSelector"), peer.get("podSelector")),
            ip_block=None if block is None else getattr(network_policy_v1, f"{prefix}IpBlock")(
                cidr=block["cidr"], except_=block.get("except"))))
    return built


def _rules(direction: str, rules: list[dict[str, Any]] | None) -> list | None:
    if rules is None:
        return None
    rule_struct = network_policy_v1.NetworkPolicyV1SpecIngress if direction == "ingress" \
        else network_policy_v1.NetworkPolicyV1SpecEgress
    ports_struct = network_policy_v1.NetworkPolicyV1SpecIngressPorts if direction == "ingress" \
        else network_policy_v1.NetworkPolicyV1SpecEgressPorts
    peer_key, peer_arg = ("from", "from_") if direction == "ingress" else ("to", "to")
    return [rule_struct(**{peer_arg: _peers(direction, rule.get(peer_key, [])),
                           "ports": [ports_struct(port=str(p["port"]), protocol=p["protocol"])
                                     for p in rule["ports"]] if "ports" in rule else None})
            for rule in rules]


def emit(scope: Construct, manifest: Manifest, depends_on: Sequence[ITerraformDependable] = (),
         namespaces: Mapping[str, str] | None = None) -> TerraformResource:
    """One kubernetes-provider resource for one manifest. ``namespaces`` maps a namespace name to a reference to
    its namespace resource: an object in it then waits for that namespace (and only that one)."""
    kind, meta, spec = manifest["kind"], manifest["metadata"], manifest.get("spec", {})
    common = {"depends_on": list(depends_on) or None}
    rid = _resource_id(manifest)
    if "namespace" in meta and namespaces and meta["namespace"] in namespaces:
        meta = {**meta, "namespace": namespaces[meta["namespace"]]}
    if kind == "Namespace":
        return namespace_v1.NamespaceV1(scope, rid, metadata=namespace_v1.NamespaceV1Metadata(
            name=meta["name"], labels=meta.get("labels"), annotations=meta.get("annotations")), **common)
    namespaced = {"name": meta["name"], "namespace": meta.get("namespace")}
    if kind == "ResourceQuota":
        return resource_quota_v1.ResourceQuotaV1(
            scope, rid, metadata=resource_quota_v1.ResourceQuotaV1Metadata(**namespaced),
            spec=resource_quota_v1.ResourceQuotaV1Spec(hard=spec["hard"]), **common)
    if kind == "LimitRange":
        limits = [limit_range_v1.LimitRangeV1SpecLimit(
            type=item["type"], default=item.get("default"), default_request=item.get("defaultRequest"),
            max=item.get("max"), min=item.get("min")) for item in spec["limits"]]
        return limit_range_v1.LimitRangeV1(scope, rid, metadata=limit_range_v1.LimitRangeV1Metadata(**namespaced),
                                           spec=limit_range_v1.LimitRangeV1Spec(limit=limits), **common)
    if kind == "NetworkPolicy":
        return network_policy_v1.NetworkPolicyV1(
            scope, rid, metadata=network_policy_v1.NetworkPolicyV1Metadata(**namespaced),
            spec=network_policy_v1.NetworkPolicyV1Spec(
                pod_selector=_selector(network_policy_v1.NetworkPolicyV1SpecPodSelector, spec["podSelector"]),
                policy_types=spec["policyTypes"], ingress=_rules("ingress", spec.get("ingress")),
                egress=_rules("egress", spec.get("egress"))), **common)
    if kind == "StorageClass":
        return storage_class_v1.StorageClassV1(
            scope, rid, metadata=storage_class_v1.StorageClassV1Metadata(
                name=meta["name"], annotations=meta.get("annotations")),
            storage_provisioner=manifest["provisioner"], reclaim_policy=manifest.get("reclaimPolicy"),
            volume_binding_mode=manifest.get("volumeBindingMode"),
            allow_volume_expansion=manifest.get("allowVolumeExpansion"), parameters=manifest.get("parameters"),
            mount_options=manifest.get("mountOptions"), **common)
    raise ValueError(f"{kind} {meta['name']}: not a kind this module emits; deliver it through a Helm release")


class KubernetesObjects(Construct):
    """A group of manifests emitted as resources, all waiting for ``depends_on`` (default nothing); objects of a
    namespace in ``namespaces`` (name -> reference to the namespace resource) reference their namespace.
    Exposes ``resources`` in manifest order and ``namespaces`` (name -> reference) for the Namespaces it emits."""

    def __init__(self, scope: Construct, id: str, *, manifests: Sequence[Manifest],
                 depends_on: Sequence[ITerraformDependable] = (), namespaces: Mapping[str, str] | None = None) -> None:
        super().__init__(scope, id)
        self.resources = [emit(self, manifest, depends_on, namespaces) for manifest in manifests]
        self.namespaces = {resource.metadata.name_input: resource.metadata.name
                           for resource in self.resources if isinstance(resource, namespace_v1.NamespaceV1)}
