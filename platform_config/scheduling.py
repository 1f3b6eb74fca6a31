"""The scheduling feasibility check: every GPU workload the platform deploys can be placed, at its largest scale.

For each pod template (and each training queue's guaranteed share), the check proves that
  1. its GPU resource exists on some pool (time-sliced ``nvidia.com/gpu`` or the MIG profile it asks for),
  2. its node selector names such a pool and it tolerates the GPU taint,
  3. one pod fits one node of that pool, and on a time-slicing pool no container asks for more than one
     ``nvidia.com/gpu`` (the device plugin refuses it: ``failRequestsGreaterThanOne``), and
  4. the pool at its max size has the capacity for everything placed on it (replicas x request).
Training runtimes are templates: their pods must fit (1-3), while their jobs count against the training queues'
quota, which is checked as capacity (4).
A configuration that fails any of these is refused at synth time, naming the workload, the resource and the
pools considered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from platform_config import workloads
from platform_config.gpu_sharing import node_resources
from platform_config.models import Environment, SharingMode
from platform_config.node_labels import (
    GPU_RESOURCE,
    GPU_TAINT_EFFECT_KUBERNETES,
    GPU_TAINT_KEY,
    GPU_TAINT_VALUE,
    POOL_LABEL,
)

GPU_RESOURCE_PREFIX = "nvidia.com/"


class SchedulingError(Exception):
    """Workloads that cannot be scheduled; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class GpuDemand:
    """GPU resources one pod requests, how many such pods may run at most, and where it may be placed."""

    workload: str
    replicas: int
    requests: dict[str, int]
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    #: The GPU requests of each container (default: the pod's ``requests`` in one container); the device plugin
    #: allocates per container.
    container_requests: tuple[dict[str, int], ...] = ()
    #: A template (a training runtime): its pods must fit a node, but it holds no capacity of its own.
    template: bool = False

    @property
    def per_container(self) -> tuple[dict[str, int], ...]:
        return self.container_requests or (self.requests,)


def _container_gpu_requests(pod_spec: dict[str, Any]) -> list[dict[str, int]]:
    found = []
    for container in pod_spec.get("containers", []):
        resources = container.get("resources", {})
        wanted = {**resources.get("limits", {}), **resources.get("requests", {})}
        gpus = {name: int(amount) for name, amount in wanted.items() if name.startswith(GPU_RESOURCE_PREFIX)}
        if gpus:
            found.append(gpus)
    return found


def _gpu_requests(pod_spec: dict[str, Any]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for container in _container_gpu_requests(pod_spec):
        for name, amount in container.items():
            totals[name] += amount
    return dict(totals)


#: Kinds whose pods a waiting Helm release waits for, and where their pod spec is.
_POD_TEMPLATE_PATHS = {"Deployment": ("spec", "template", "spec"), "StatefulSet": ("spec", "template", "spec"),
                       "DaemonSet": ("spec", "template", "spec"), "Job": ("spec", "template", "spec")}


def runs_gpu_pods(manifests: Iterable[dict[str, Any]]) -> bool:
    """Whether any workload among ``manifests`` runs pods that request GPU resources (whole, time-sliced or MIG)."""
    for manifest in manifests:
        path = _POD_TEMPLATE_PATHS.get(manifest.get("kind", ""))
        if path is None:
            continue
        pod = manifest
        for key in path:
            pod = pod.get(key, {})
        if _gpu_requests(pod):
            return True
    return False


def _demand(workload: str, replicas: int, pod: dict[str, Any], *, template: bool = False) -> GpuDemand | None:
    requests = _gpu_requests(pod)
    if not requests:
        return None
    return GpuDemand(workload=workload, replicas=replicas, requests=requests,
                     node_selector=pod.get("nodeSelector", {}), tolerations=tuple(pod.get("tolerations", [])),
                     container_requests=tuple(_container_gpu_requests(pod)), template=template)


TRAINING_RUNTIME_KINDS = ("ClusterTrainingRuntime", "TrainingRuntime")


def demands_from_manifests(manifests: Iterable[dict[str, Any]]) -> list[GpuDemand]:
    """The GPU demands of Deployments and StatefulSets (an HPA's ``maxReplicas`` is the scale that must fit) and of
    the pod templates of training runtimes."""
    manifests = list(manifests)
    most = {(m["metadata"]["namespace"], m["spec"]["scaleTargetRef"]["name"]): m["spec"]["maxReplicas"]
            for m in manifests if m["kind"] == "HorizontalPodAutoscaler"}
    demands = []
    for manifest in manifests:
        meta, spec = manifest["metadata"], manifest.get("spec", {})
        if manifest["kind"] in ("Deployment", "StatefulSet"):
            key = (meta["namespace"], meta["name"])
            demands.append(_demand(f"{key[0]}/{key[1]}", most.get(key, spec.get("replicas", 1)),
                                   spec["template"]["spec"]))
        elif manifest["kind"] in TRAINING_RUNTIME_KINDS:
            nodes = spec.get("mlPolicy", {}).get("numNodes", 1)
            for job in spec["template"]["spec"]["replicatedJobs"]:
                demands.append(_demand(f"{manifest['kind']} {meta['name']} ({job['name']})", nodes,
                                       job["template"]["spec"]["template"]["spec"], template=True))
    return [demand for demand in demands if demand is not None]


def demands_from_training_queues(environment: Environment) -> list[GpuDemand]:
    """Each team's guaranteed share (time-sliced GPU units) is capacity the pool must hold besides the deployed
    workloads."""
    demands = []
    for team, queue in environment.workloads.training.teams.items():
        for pool_name, units in queue.gpus.items():
            if units:
                # A quota, not a pod: count it as that many one-unit pods, which any node can take.
                demands.append(GpuDemand(
                    workload=f"training queue {team}", replicas=units, requests={GPU_RESOURCE: 1},
                    node_selector={POOL_LABEL: pool_name}, tolerations=(_GPU_TOLERATION,)))
    return demands


_GPU_TOLERATION = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": GPU_TAINT_EFFECT_KUBERNETES}


def _tolerates_gpu_taint(tolerations: Iterable[dict[str, Any]]) -> bool:
    for toleration in tolerations:
        if toleration.get("operator", "Equal") == "Exists":
            matches = toleration.get("key") in (None, "", GPU_TAINT_KEY)
        else:
            matches = toleration.get("key") == GPU_TAINT_KEY and toleration.get("value") == GPU_TAINT_VALUE
        if matches and toleration.get("effect") in (None, "", GPU_TAINT_EFFECT_KUBERNETES):
            return True
    return False


def check_schedulable(environment: Environment, demands: Iterable[GpuDemand]) -> None:
    """Raise ``SchedulingError`` listing every demand that cannot be placed; return quietly when all fit."""
    pools = environment.gpu_pools()
    per_node = {name: node_resources(pool) for name, pool in pools.items()}
    sharing = {name: pool.gpu.sharing.mode for name, pool in pools.items()}
    whole = [name for name, mode in sharing.items() if mode is SharingMode.EXCLUSIVE]
    considered = "; ".join(f"{name} offers {', '.join(f'{r} x{n}/node' for r, n in offer.items())}"
                           for name, offer in per_node.items())
    problems: list[str] = []
    placed: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for demand in demands:
        selected = demand.node_selector.get(POOL_LABEL)
        for resource, count in demand.requests.items():
            offering = [name for name, offer in per_node.items() if resource in offer]
            asked = f"{demand.workload} requests {resource} x{count}"
            if not offering:
                problems.append(f"{asked}: no pool offers it (pools considered: {considered})")
                continue
            if selected not in offering:
                problems.append(f"{asked}: its node selector {POOL_LABEL}={selected} is not a pool offering it "
                                f"(pools offering it: {', '.join(offering)})")
                continue
            if not _tolerates_gpu_taint(demand.tolerations):
                problems.append(f"{asked}: it does not tolerate the taint {GPU_TAINT_KEY}={GPU_TAINT_VALUE}:"
                                f"{GPU_TAINT_EFFECT_KUBERNETES} of pool {selected}")
                continue
            if count > per_node[selected][resource]:
                problems.append(f"{asked} per pod: one node of pool {selected} has {per_node[selected][resource]}")
                continue
            largest = max(container.get(resource, 0) for container in demand.per_container)
            if resource == GPU_RESOURCE and largest > 1 and sharing[selected] is SharingMode.TIME_SLICING:
                problems.append(f"{asked}, {largest} in one container: pool {selected} time-slices its GPUs and "
                                f"the device plugin refuses more than one {GPU_RESOURCE} per container "
                                "(failRequestsGreaterThanOne); place it on a pool with sharing mode exclusive "
                                f"(pools offering whole GPUs: {', '.join(whole) or 'none'})")
                continue
            if not demand.template:
                placed[(selected, resource)].append((demand.workload, demand.replicas * count))
    for (pool_name, resource), users in sorted(placed.items()):
        pool = pools[pool_name]
        capacity = pool.max_size * per_node[pool_name][resource]
        needed = sum(amount for _, amount in users)
        if needed > capacity:
            detail = ", ".join(f"{workload} {amount}" for workload, amount in users)
            problems.append(f"pool {pool_name} at its max size {pool.max_size} holds {capacity} {resource}; "
                            f"the workloads placed on it need {needed} ({detail})")
    if problems:
        raise SchedulingError(problems)


def environment_demands(environment: Environment) -> list[GpuDemand]:
    """Every GPU demand of an environment: its inference servers, agents and training runtimes, and its training
    queues."""
    manifests = [*workloads.inference_manifests(environment, workloads.PLACEHOLDER_REFS),
                 *workloads.agent_manifests(environment), *workloads.training_manifests(environment)]
    return [*demands_from_manifests(manifests), *demands_from_training_queues(environment)]


def scheduling_problems(environment: Environment) -> list[str]:
    """The problems ``check_schedulable`` finds in an environment's own workloads, empty when all fit."""
    try:
        check_schedulable(environment, environment_demands(environment))
    except SchedulingError as error:
        return error.problems
    return []
