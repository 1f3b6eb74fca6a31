"""What "ready" means for each kind of object, on the JSON ``kubectl get -o json`` prints.

The rules are the ones ``kubectl rollout status`` applies: the controller has seen the latest spec
(``observedGeneration``), every replica runs the latest template, and every replica is available or ready.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from platform_config import cluster_objects, gitops
from platform_config.gpu_sharing import node_resources
from platform_config.helm_values import chart_catalogue, release_values
from platform_config.models import Environment
from platform_config.node_labels import POOL_LABEL

Obj = Mapping[str, Any]
#: The release whose values declare the platform's Argo CD Applications.
APPLICATIONS_RELEASE = "argocd-apps"


@dataclass(frozen=True)
class ClusterState:
    """One reading of the cluster: the ``items`` of three ``kubectl get -A -o json`` lists."""

    workloads: list[Obj]     # deployments, statefulsets, daemonsets
    applications: list[Obj]  # applications.argoproj.io
    nodes: list[Obj]


def platform_namespaces(environment: Environment) -> set[str]:
    """Where the platform installs things: its own namespaces and every release's namespace."""
    names = set(cluster_objects.application_namespaces()) | set(cluster_objects.system_namespaces())
    names |= {pin.namespace for pin in chart_catalogue().values()}
    if environment.workloads.wandb.self_managed:
        names.add("wandb")
    return names


def declared_applications(environment: Environment) -> dict[str, str]:
    """Application name -> its namespace: the root (and any other) of the argocd-apps release, and the
    Applications of the workloads that run the platform's images."""
    applications = release_values(APPLICATIONS_RELEASE, environment.name).get("applications", {})
    default_namespace = chart_catalogue()[APPLICATIONS_RELEASE].namespace
    declared = {name: spec.get("namespace", default_namespace) for name, spec in applications.items()}
    return declared | {name: gitops.ARGOCD_NAMESPACE for name in gitops.IMAGE_APPLICATIONS}


def _name(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{obj['kind'].lower()} {meta.get('namespace', '')}/{meta['name']}"


def _generation_seen(obj: Obj) -> bool:
    return obj.get("status", {}).get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)


def workload_problem(obj: Obj) -> str | None:
    """Why a Deployment, StatefulSet or DaemonSet is not ready, or None."""
    status = obj.get("status", {})
    name = _name(obj)
    if not _generation_seen(obj):
        return f"{name}: the controller has not seen generation {obj['metadata'].get('generation')} yet"
    kind = obj["kind"]
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled", 0)
        counts = {"updated": status.get("updatedNumberScheduled", 0), "ready": status.get("numberReady", 0),
                  "available": status.get("numberAvailable", 0)}
    else:
        desired = obj.get("spec", {}).get("replicas", 1)
        counts = {"updated": status.get("updatedReplicas", 0), "ready": status.get("readyReplicas", 0)}
        if kind == "Deployment":
            counts["available"] = status.get("availableReplicas", 0)
            # Old replicas still running mean the rollout has not finished.
            counts["total"] = status.get("replicas", 0)
        elif status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision"):
            return f"{name}: revision {status.get('updateRevision')} is still rolling out"
    short = {what: count for what, count in counts.items() if count != desired}
    if short:
        return f"{name}: {', '.join(f'{count} {what}' for what, count in short.items())} of {desired} wanted"
    return None


def application_problem(app: Obj) -> str | None:
    status = app.get("status", {})
    sync = status.get("sync", {}).get("status", "Unknown")
    health = status.get("health", {}).get("status", "Unknown")
    if (sync, health) == ("Synced", "Healthy"):
        return None
    message = status.get("health", {}).get("message") or ""
    return f"{_name(app)}: {sync} and {health}" + (f" ({message})" if message else "")


def gpu_node_problems(nodes: Iterable[Obj], environment: Environment) -> list[str]:
    """GPU nodes whose advertised (allocatable) GPU resources differ from what their pool promises."""
    pools = environment.gpu_pools()
    found = []
    for node in nodes:
        pool_name = node["metadata"].get("labels", {}).get(POOL_LABEL)
        if pool_name not in pools:
            continue
        allocatable = node.get("status", {}).get("allocatable", {})
        for resource, promised in node_resources(pools[pool_name]).items():
            advertised = int(allocatable.get(resource, "0"))
            if advertised != promised:
                found.append(f"node {node['metadata']['name']} (pool {pool_name}): advertises {resource} "
                             f"{advertised}, the pool promises {promised}")
    return found


def problems(state: ClusterState, environment: Environment) -> list[str]:
    """Everything that is not ready yet, one line each; empty when the deploy is verified."""
    namespaces = platform_namespaces(environment)
    found = [problem for obj in state.workloads if obj["metadata"].get("namespace") in namespaces
             if (problem := workload_problem(obj))]
    present = {(a["metadata"].get("namespace"), a["metadata"]["name"]): a for a in state.applications}
    for name, namespace in sorted(declared_applications(environment).items()):
        app = present.get((namespace, name))
        if app is None:
            found.append(f"application {namespace}/{name}: does not exist")
        elif problem := application_problem(app):
            found.append(problem)
    found += gpu_node_problems(state.nodes, environment)
    return found
