"""What the architecture document draws from one environment's synthesized stacks: the Helm releases and the
Kubernetes objects in their values, the workloads those objects run (with their node pool, GPUs and the cluster URLs
they are configured with), the namespaces, their quotas and the Kueue queues."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from platform_config.models import Environment
from platform_config.node_labels import POOL_LABEL
from platform_config.report import (
    PoolCapacity,
    format_resources,
    helm_releases,
    pools_from_cluster_stack,
    referenced_name,
    release_manifests,
    resources_of,
)
from tools.report.mermaid import node_id

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
PSS_LABEL = "pod-security.kubernetes.io/enforce"
LINKERD_INJECT = "linkerd.io/inject"
_CLUSTER_URL = re.compile(r"https?://([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?(?::(\d+))?(/[^\s\"']*)?")


# --- what the stacks hold ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    chart: str
    version: str
    repository: str
    stack: str
    manifests: tuple[dict, ...] = field(default=(), compare=False)
    text: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class Workload:
    kind: str
    namespace: str
    name: str
    release: str
    replicas: str
    pool: str | None
    gpu: Mapping[str, int]
    labels: Mapping[str, str]
    calls: tuple[tuple[str, str, str], ...]  #: (variable, namespace, service) of cluster URLs it is given

    @property
    def identifier(self) -> str:
        return node_id("wl", self.namespace, self.name)

    def describe(self) -> str:
        parts = [f"{self.kind} {self.name}", f"replicas {self.replicas}"] if self.replicas else [
            f"{self.kind} {self.name}"]
        if self.pool:
            parts.append(f"on {self.pool}")
        if self.gpu:
            parts.append(format_resources(self.gpu))
        return "<br/>".join(parts)


class EnvironmentView:
    """The parts of one environment's synthesized stacks the diagrams draw."""

    def __init__(self, environment: Environment, stacks: Mapping[str, Mapping[str, Any]]) -> None:
        self.environment = environment
        self.name = environment.name
        self.stacks = stacks
        self.releases = self._releases()
        self.manifests = [(release, m) for release in self.releases for m in release.manifests]
        self.workloads = self._workloads()

    def stack(self, layer: str) -> Mapping[str, Any]:
        return self.stacks.get(f"{self.name}-{layer}") or {}

    def every(self, resource_type: str) -> dict[str, dict]:
        found = {}
        for stack in self.stacks.values():
            found.update(resources_of(stack, resource_type))
        return dict(sorted(found.items()))

    def _releases(self) -> list[Release]:
        releases = []
        for stack_name, stack in sorted(self.stacks.items()):
            for body in helm_releases(stack).values():
                manifests = []
                for manifest in release_manifests(body):
                    metadata = manifest.setdefault("metadata", {})
                    if manifest["kind"] in (*WORKLOAD_KINDS, "Service", "Ingress", "ConfigMap",
                                            "HorizontalPodAutoscaler"):
                        metadata.setdefault("namespace", body.get("namespace", "default"))
                    manifests.append(manifest)
                releases.append(Release(body.get("name", ""), body.get("namespace", "default"), body.get("chart", ""),
                                        str(body.get("version", "")), body.get("repository", ""), stack_name,
                                        tuple(manifests), json.dumps(body.get("values") or [])))
        return sorted(releases, key=lambda r: (r.namespace, r.name))

    def _workloads(self) -> list[Workload]:
        most = {(m["metadata"].get("namespace"), m["spec"]["scaleTargetRef"]["name"]):
                (m["spec"].get("minReplicas", 1), m["spec"]["maxReplicas"])
                for _, m in self.manifests if m["kind"] == "HorizontalPodAutoscaler"}
        config = {(m["metadata"].get("namespace"), m["metadata"].get("name")): m.get("data") or {}
                  for _, m in self.manifests if m["kind"] == "ConfigMap"}
        workloads = []
        for release, manifest in self.manifests:
            if manifest["kind"] not in WORKLOAD_KINDS:
                continue
            meta, spec = manifest["metadata"], manifest.get("spec") or {}
            template = spec.get("template") or (spec.get("jobTemplate") or {}).get("spec", {}).get("template") or {}
            pod = template.get("spec") or {}
            namespace = meta.get("namespace", release.namespace)
            scale = most.get((namespace, meta.get("name")))
            if scale:
                replicas = str(scale[0]) if scale[0] == scale[1] else f"{scale[0]}..{scale[1]}"
            elif manifest["kind"] in ("Deployment", "StatefulSet"):
                replicas = str(spec.get("replicas", 1))
            else:
                replicas = ""
            gpu: dict[str, int] = {}
            variables: dict[str, str] = {}
            for container in pod.get("containers") or []:
                limits = (container.get("resources") or {}).get("limits") or {}
                for resource, amount in limits.items():
                    if resource.startswith("nvidia.com/"):
                        gpu[resource] = gpu.get(resource, 0) + int(amount)
                for variable in container.get("env") or []:
                    if isinstance(variable.get("value"), str):
                        variables[variable["name"]] = variable["value"]
                for source in container.get("envFrom") or []:
                    reference = (source.get("configMapRef") or {}).get("name")
                    if reference:
                        variables.update({k: str(v) for k, v in config.get((namespace, reference), {}).items()})
            calls = sorted({(variable, match.group(2), match.group(1)) for variable, value in variables.items()
                            for match in _CLUSTER_URL.finditer(value)})
            workloads.append(Workload(manifest["kind"], namespace, meta.get("name", ""), release.name, replicas,
                                      (pod.get("nodeSelector") or {}).get(POOL_LABEL), dict(sorted(gpu.items())),
                                      dict((template.get("metadata") or {}).get("labels") or {}), tuple(calls)))
        return sorted(workloads, key=lambda w: (w.namespace, w.name))

    def namespaces(self) -> dict[str, dict]:
        """Every namespace the stacks create or install into: its labels and annotations (empty when the platform
        does not create it)."""
        found: dict[str, dict] = {}
        for body in self.every("kubernetes_namespace_v1").values():
            metadata = body.get("metadata") or {}
            metadata = metadata[0] if isinstance(metadata, list) else metadata
            found[metadata.get("name", "")] = metadata
        for release in self.releases:
            found.setdefault(release.namespace, {})
        for workload in self.workloads:
            found.setdefault(workload.namespace, {})
        return dict(sorted(found.items()))

    def quotas(self) -> dict[str, dict[str, str]]:
        """The ResourceQuota limits of each namespace (``requests.`` dropped), by namespace name."""
        names = {name: ((body.get("metadata") or {}) if isinstance(body.get("metadata"), dict)
                        else (body.get("metadata") or [{}])[0]).get("name", "")
                 for name, body in self.every("kubernetes_namespace_v1").items()}
        quotas: dict[str, dict[str, str]] = {}
        for body in self.every("kubernetes_resource_quota_v1").values():
            metadata = body.get("metadata") or {}
            metadata = metadata[0] if isinstance(metadata, list) else metadata
            spec = body.get("spec") or {}
            spec = spec[0] if isinstance(spec, list) else spec
            namespace = names.get(referenced_name(metadata.get("namespace"), "kubernetes_namespace_v1") or "",
                                  metadata.get("namespace", ""))
            for resource, amount in sorted((spec.get("hard") or {}).items()):
                quotas.setdefault(namespace, {})[resource.removeprefix("requests.")] = str(amount)
        return quotas

    def queues(self) -> list[Queue]:
        objects = [m for _, m in self.manifests]
        flavors = {m["metadata"].get("name"): ((m.get("spec") or {}).get("nodeLabels") or {}).get(POOL_LABEL)
                   for m in objects if m["kind"] == "ResourceFlavor"}
        cluster_queues = {m["metadata"].get("name"): m.get("spec") or {} for m in objects
                          if m["kind"] == "ClusterQueue"}
        queues = []
        for manifest in objects:
            if manifest["kind"] != "LocalQueue":
                continue
            target = (manifest.get("spec") or {}).get("clusterQueue", "")
            quotas: dict[str, dict[str, str]] = {}
            for group in cluster_queues.get(target, {}).get("resourceGroups") or []:
                for flavor in group.get("flavors") or []:
                    pool = flavors.get(flavor.get("name")) or flavor.get("name")
                    for resource in flavor.get("resources") or []:
                        if str(resource.get("name", "")).startswith("nvidia.com/"):
                            quotas.setdefault(pool, {})[resource["name"]] = str(resource.get("nominalQuota"))
            queues.append(Queue(manifest["metadata"].get("namespace", ""), manifest["metadata"].get("name", ""),
                                target, quotas))
        return sorted(queues, key=lambda q: (q.namespace, q.name))

    def pools(self) -> list[PoolCapacity]:
        order = list(self.environment.node_pools)
        pools = pools_from_cluster_stack(self.stack("cluster"))
        return sorted(pools, key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name))


@dataclass(frozen=True)
class Queue:
    """A Kueue LocalQueue and the GPU units its ClusterQueue guarantees per pool (through resource flavors)."""

    namespace: str
    name: str
    cluster_queue: str
    quotas: Mapping[str, Mapping[str, str]]  #: pool -> GPU resource -> nominal quota

    @property
    def identifier(self) -> str:
        return node_id("queue", self.namespace, self.name)

    def describe(self) -> str:
        guaranteed = "; ".join(f"{pool} " + ", ".join(f"{r.removeprefix('nvidia.com/')} {q}" for r, q in
                                                      sorted(resources.items()))
                               for pool, resources in sorted(self.quotas.items()))
        return f"queue {self.name} (ClusterQueue {self.cluster_queue})" + \
            (f"<br/>guaranteed: {guaranteed}" if guaranteed else "")


def meshed(metadata: Mapping[str, Any]) -> bool:
    return (metadata.get("annotations") or {}).get(LINKERD_INJECT) == "enabled"
