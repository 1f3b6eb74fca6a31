"""What the API server does with a container's resources in a namespace with a LimitRange and a ResourceQuota.

Admission of one container, in the API server's order:
  1. defaulting of the pod: a resource with a limit and no request gets the limit as its request;
  2. LimitRanger (``type: Container``): a missing limit becomes ``default``, a missing request ``defaultRequest``
     (the LimitRange itself was defaulted when stored: ``default`` from ``max``, ``defaultRequest`` from
     ``default``, then from ``min``);
  3. validation: request <= limit for every resource; an extended resource (``nvidia.com/...``) needs a limit equal
     to its request; each value within the LimitRange's ``min`` and ``max``; a resource a ResourceQuota tracks
     must have a request.
A container injected by a mutating webhook (the mesh proxy) goes through the same defaulting: the API server
re-runs its in-tree mutating plugins after a webhook changes the pod.

A namespace's ResourceQuota must then hold the namespace's workloads at their largest: every Deployment at its
autoscaler's ``maxReplicas`` plus the pods a rolling update adds (``maxSurge``), each pod counted as the scheduler
and the quota count it (the larger of its containers' sum and its largest init container), and what Kueue may
admit into the namespace (the nominal quotas of the ClusterQueues that select it).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from platform_config import cluster_objects, linkerd_identity, workloads
from platform_config.data_layer import workload_identities
from platform_config.helm_values import PodValues, chart_catalogue, release_values, values_file_setting
from platform_config.models import Environment

Manifest = dict[str, Any]
Resources = dict[str, dict[str, str]]

_SUFFIXES = {"m": Fraction(1, 1000), "": Fraction(1), "k": Fraction(10**3), "M": Fraction(10**6),
             "G": Fraction(10**9), "T": Fraction(10**12), "P": Fraction(10**15), "E": Fraction(10**18),
             "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40),
             "Pi": Fraction(2**50), "Ei": Fraction(2**60)}
#: Resources the kubelet can overcommit; any other (``nvidia.com/gpu``, ``nvidia.com/mig-*``) is extended.
_NATIVE = ("cpu", "memory", "ephemeral-storage")
_QUOTA_SCOPES = ("requests.", "limits.")


@dataclass(frozen=True)
class AdmissionProblem:
    """One refusal: the field to change and why. The field is in ``values_file`` when a chart's values set it, else in
    the environment's own file."""

    field: str
    message: str
    values_file: str | None = None

    def line(self, *, environment_file: str, environment_name: str) -> str:
        """``<file>: <field>: <message>``; a values file may serve several environments, so it names the one."""
        if self.values_file is None:
            return f"{environment_file}: {self.field}: {self.message}"
        return f"{self.values_file}: {self.field}: environment {environment_name}: {self.message}"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class AdmissionError(Exception):
    """Workloads the API server would refuse, or namespace quotas that cannot hold them, in ``environment_name``."""

    def __init__(self, environment_name: str, problems: list[AdmissionProblem]):
        self.environment_name = environment_name
        self.problems = problems
        super().__init__("\n".join(f"{environment_name}: {p}" for p in problems))


def quantity(value: str | int | float) -> Fraction:
    """A Kubernetes quantity (``500m``, ``4``, ``256Mi``, ``1Ti``, ``1e3``) as an exact number."""
    text = str(value).strip()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            number = text[: -len(suffix)]
            try:
                return Fraction(number) * _SUFFIXES[suffix]
            except ValueError:
                continue
    try:
        return Fraction(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a Kubernetes quantity") from None


def _is_extended(resource: str) -> bool:
    return resource not in _NATIVE and not resource.startswith("hugepages-")


def stored_limit_item(item: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """A ``type: Container`` LimitRange item as the API server stores it (its defaulting applied)."""
    default = dict(item.get("default") or {})
    default_request = dict(item.get("defaultRequest") or {})
    for name, value in (item.get("max") or {}).items():
        default.setdefault(name, value)
    for name, value in default.items():
        default_request.setdefault(name, value)
    for name, value in (item.get("min") or {}).items():
        default_request.setdefault(name, value)
    return {"default": default, "defaultRequest": default_request, "max": dict(item.get("max") or {}),
            "min": dict(item.get("min") or {})}


def container_item(limit_range: Manifest | None) -> dict[str, dict[str, str]]:
    """The (stored) ``type: Container`` item of a LimitRange; none means no defaults and no bounds."""
    items = [i for i in (limit_range or {}).get("spec", {}).get("limits", []) if i.get("type") == "Container"]
    merged: dict[str, dict[str, str]] = {"default": {}, "defaultRequest": {}, "max": {}, "min": {}}
    for item in items:
        for field, values in stored_limit_item(item).items():
            merged[field] |= values
    return merged


def admit_container(resources: Mapping[str, Any] | None, limit_range: Manifest | None,
                    quota_tracked: Iterable[str] = ()) -> tuple[Resources, list[str]]:
    """The container's resources after defaulting and LimitRanger, and why the API server would refuse it (empty
    when it is admitted). ``quota_tracked`` names the resources a ResourceQuota of the namespace counts."""
    requests = {k: str(v) for k, v in ((resources or {}).get("requests") or {}).items()}
    limits = {k: str(v) for k, v in ((resources or {}).get("limits") or {}).items()}
    for name, value in limits.items():
        requests.setdefault(name, value)
    item = container_item(limit_range)
    for name, value in item["default"].items():
        limits.setdefault(name, str(value))
    for name, value in item["defaultRequest"].items():
        requests.setdefault(name, str(value))

    problems = []
    for name in sorted(set(requests) | set(limits)):
        request, limit = requests.get(name), limits.get(name)
        if request is not None and limit is not None and quantity(request) > quantity(limit):
            problems.append(f"{name} request {request} is above its limit {limit}")
        if _is_extended(name) and (limit is None or (request is not None and quantity(request) != quantity(limit))):
            problems.append(f"{name} is an extended resource: its request {request} must equal a limit ({limit})")
    for name, bound in item["min"].items():
        for kind, value in (("request", requests.get(name)), ("limit", limits.get(name))):
            if value is None or quantity(value) < quantity(bound):
                problems.append(f"{name} {kind} {value} is below the LimitRange min {bound}")
    for name, bound in item["max"].items():
        for kind, value in (("request", requests.get(name)), ("limit", limits.get(name))):
            if value is None or quantity(value) > quantity(bound):
                problems.append(f"{name} {kind} {value} is above the LimitRange max {bound}")
    for name in quota_tracked:
        if not _is_extended(name) and name not in requests:
            problems.append(f"{name}: the namespace's ResourceQuota counts it, and the container has no request")
    return {"requests": requests, "limits": limits}, problems


def pod_specs(manifest: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod spec inside a manifest, wherever its kind keeps it (Deployment, StatefulSet, DaemonSet, Job,
    CronJob, JobSet, training runtimes, ...): any object with a ``containers`` list of named containers."""
    if isinstance(manifest, Mapping):
        containers = manifest.get("containers")
        if isinstance(containers, list) and containers and all(
                isinstance(c, Mapping) and "name" in c for c in containers):
            yield path or ".", dict(manifest)
            return
        for key, value in manifest.items():
            yield from pod_specs(value, f"{path}.{key}")
    elif isinstance(manifest, list):
        for index, value in enumerate(manifest):
            yield from pod_specs(value, f"{path}[{index}]")


def containers_of(pod: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in ("initContainers", "containers"):
        for container in pod.get(kind) or []:
            yield kind, container


def pod_requests(pod: Mapping[str, Any], limit_range: Manifest | None,
                 sidecars: Iterable[Mapping[str, Any]] = ()) -> dict[str, Fraction]:
    """What one pod requests as the quota counts it: per resource, the larger of the sum over its containers (and
    injected ``sidecars``, given as resources) and its largest init container, after LimitRange defaulting."""
    main: dict[str, Fraction] = defaultdict(Fraction)
    init: dict[str, Fraction] = defaultdict(Fraction)
    admitted = [(kind, admit_container(c.get("resources"), limit_range)[0]) for kind, c in containers_of(pod)]
    admitted += [("containers", admit_container(s, limit_range)[0]) for s in sidecars]
    for kind, resources in admitted:
        for name, value in resources["requests"].items():
            if kind == "initContainers":
                init[name] = max(init[name], quantity(value))
            else:
                main[name] += quantity(value)
    return {name: max(main.get(name, Fraction(0)), init.get(name, Fraction(0))) for name in {*main, *init}}


def _surge(spec: Mapping[str, Any], replicas: int) -> int:
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0
    surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
    if isinstance(surge, str) and surge.endswith("%"):
        return math.ceil(replicas * int(surge[:-1]) / 100)
    return int(surge)


def most_pods(manifests: Iterable[Manifest]) -> dict[tuple[str, str], int]:
    """(namespace, Deployment or StatefulSet) -> the most pods it can have at once: its autoscaler's maximum (or its
    replicas) plus the pods a rolling update adds."""
    manifests = list(manifests)
    scaled = {(m["metadata"].get("namespace"), m["spec"]["scaleTargetRef"]["name"]): m["spec"]["maxReplicas"]
              for m in manifests if m["kind"] == "HorizontalPodAutoscaler"}
    most = {}
    for manifest in manifests:
        if manifest["kind"] not in ("Deployment", "StatefulSet"):
            continue
        key = (manifest["metadata"].get("namespace"), manifest["metadata"]["name"])
        replicas = scaled.get(key, manifest["spec"].get("replicas", 1))
        surge = _surge(manifest["spec"], replicas) if manifest["kind"] == "Deployment" else 0
        most[key] = replicas + surge
    return most


def queue_admissions(manifests: Iterable[Manifest], namespace: str) -> dict[str, Fraction]:
    """What Kueue may admit into ``namespace`` at once: the nominal quotas of every ClusterQueue that selects it
    (borrowing moves quota between them, it never adds any)."""
    totals: dict[str, Fraction] = defaultdict(Fraction)
    for manifest in manifests:
        if manifest["kind"] != "ClusterQueue":
            continue
        selector = manifest["spec"].get("namespaceSelector")
        if selector is None:
            continue  # Kueue: no selector matches no namespace; an empty one matches every namespace
        labels = selector.get("matchLabels") or {}
        if labels and labels.get("kubernetes.io/metadata.name") != namespace:
            continue
        for group in manifest["spec"].get("resourceGroups", []):
            for flavor in group["flavors"]:
                for resource in flavor["resources"]:
                    totals[resource["name"]] += quantity(resource["nominalQuota"])
    return dict(totals)


def quota_shortfalls(hard: Mapping[str, str], demand: Mapping[str, Fraction]) -> list[tuple[str, str, Fraction]]:
    """(quota key, its value, what the workloads request) for every requests quota below the demand."""
    short = []
    for key, value in sorted(hard.items()):
        scope = next((s for s in _QUOTA_SCOPES if key.startswith(s)), "requests.")
        if scope != "requests.":
            continue
        resource = key.removeprefix(scope)
        needed = demand.get(resource, Fraction(0))
        if needed > quantity(value):
            short.append((key, value, needed))
    return short


def format_quantity(value: Fraction, resource: str) -> str:
    if resource == "memory":
        return f"{float(value / 2**30):.1f}Gi"
    return f"{float(value):g}"


def _at(values: Mapping[str, Any], dotted: str) -> Any:
    for key in dotted.split("."):
        values = (values or {}).get(key)
    return values


#: On a Deployment that ``chart_deployment`` describes: the values file and field that set its resources, which a
#: refusal names.
VALUES_FILE_ANNOTATION = "platform.mlops/values-file"
VALUES_FIELD_ANNOTATION = "platform.mlops/values-field"


def chart_deployment(name: str, namespace: str, values: Mapping[str, Any], pods: PodValues, *,
                     values_file: str | None = None) -> Manifest:
    """The Deployment a chart renders, main container only, from where its values set the replicas and resources
    (``pods``; the chart's default replica count is 1): enough to admit it and count it against the namespace's
    quota. A chart's own rollout strategy is taken as the Deployment default (25% surge). ``values_file`` (the file
    that sets the resources) is what a refusal of the container names."""
    replicas = _at(values, pods.replicas) or 1
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if values_file:
        metadata["annotations"] = {VALUES_FILE_ANNOTATION: values_file, VALUES_FIELD_ANNOTATION: pods.resources}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": name, "resources": _at(values, pods.resources)}]}}}}


def chart_deployments(environment_name: str) -> list[Manifest]:
    """The Deployments of the charts that size their pods in their values (``pods`` in the chart catalogue: those
    installed into an application namespace), from the environment's values files."""
    return [chart_deployment(name, pin.namespace, release_values(name, environment_name), pin.pods,
                             values_file=values_file_setting(name, environment_name, pin.pods.resources))
            for name, pin in chart_catalogue().items() if pin.pods]


@dataclass(frozen=True)
class NamespaceRules:
    """What the API server checks a namespace's pods against: its LimitRange, its ResourceQuota, and the mesh
    proxy's resources when the mesh injects its pods (None when it does not)."""

    limit_range: Manifest | None
    quota: Manifest | None
    sidecar: Mapping[str, Any] | None = None


def _namespaces_of(manifest: Manifest, pod: Mapping[str, Any], namespaces: Iterable[str]) -> list[str]:
    """Where a pod template's pods run: its manifest's namespace; for a cluster-scoped template (a training
    runtime), the namespace of its service account's workload identity, else every namespace."""
    if manifest["metadata"].get("namespace"):
        return [manifest["metadata"]["namespace"]]
    accounts = {i.service_account: i.namespace for i in workload_identities().values()}
    account = pod.get("serviceAccountName")
    return [accounts[account]] if account in accounts else list(namespaces)


def _injected(pod_template: Mapping[str, Any]) -> bool:
    annotations = (pod_template.get("metadata") or {}).get("annotations") or {}
    return annotations.get("linkerd.io/inject") != "disabled"


def _refusal(manifest: Manifest, where: str, reason: str) -> AdmissionProblem:
    annotations = manifest["metadata"].get("annotations") or {}
    if VALUES_FILE_ANNOTATION in annotations:
        return AdmissionProblem(field=annotations[VALUES_FIELD_ANNOTATION], message=f"{where}: {reason}",
                                values_file=annotations[VALUES_FILE_ANNOTATION])
    return AdmissionProblem(field=where, message=reason)


def admission_problems(rules: Mapping[str, NamespaceRules], manifests: Iterable[Manifest]) -> list[AdmissionProblem]:
    """Every container the API server would refuse in a namespace of ``rules``, and every ResourceQuota that
    cannot hold the namespace's workloads at their largest."""
    manifests = list(manifests)
    problems = []
    for manifest in manifests:
        for path, pod in pod_specs(manifest.get("spec", {}), "spec"):
            for namespace in _namespaces_of(manifest, pod, rules):
                if namespace not in rules:
                    continue
                tracked = [k.removeprefix("requests.") for k in
                           ((rules[namespace].quota or {}).get("spec", {}).get("hard") or {})]
                for kind, container in containers_of(pod):
                    _, refused = admit_container(container.get("resources"), rules[namespace].limit_range, tracked)
                    where = (f"{namespace}/{manifest['kind']} {manifest['metadata']['name']} {path}.{kind} "
                             f"{container['name']}")
                    problems += [_refusal(manifest, where, reason) for reason in refused]
    most = most_pods(manifests)
    for namespace, rule in rules.items():
        if rule.quota is None:
            continue
        demand: dict[str, Fraction] = defaultdict(Fraction, queue_admissions(manifests, namespace))
        for manifest in manifests:
            key = (manifest["metadata"].get("namespace"), manifest["metadata"]["name"])
            if manifest["kind"] not in ("Deployment", "StatefulSet") or key[0] != namespace:
                continue
            template = manifest["spec"]["template"]
            sidecars = [rule.sidecar] if rule.sidecar is not None and _injected(template) else []
            for resource, amount in pod_requests(template["spec"], rule.limit_range, sidecars).items():
                demand[resource] += amount * most[key]
        for key, value, needed in quota_shortfalls(rule.quota["spec"]["hard"], demand):
            resource = key.removeprefix("requests.")
            needed_text = format_quantity(needed, resource)
            problems.append(AdmissionProblem(
                field=cluster_objects.quota_field(namespace, key),
                message=f"ResourceQuota {key} {value} of namespace {namespace} cannot hold the namespace's workloads "
                        f"at their largest, which request {needed_text} (allowed: at least {needed_text})"))
    return problems


def mesh_proxy_resources(linkerd_values: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The resources Linkerd's injector gives every proxy (``proxy.resources`` of the control plane's values:
    ``{cpu: {request, limit}, memory: {request, limit}}``); unset ones are left to the LimitRange."""
    configured = ((linkerd_values.get("proxy") or {}).get("resources")) or {}
    resources: dict[str, dict[str, str]] = {"requests": {}, "limits": {}}
    for name, amounts in configured.items():
        for field, kind in (("request", "requests"), ("limit", "limits")):
            if (amounts or {}).get(field) not in (None, ""):
                resources[kind][name] = str(amounts[field])
    return resources


def check_admission(environment: Environment, manifests: Iterable[Manifest], *,
                    mesh_proxy: Mapping[str, Any]) -> None:
    """Raise ``AdmissionError`` when a workload's container would be refused in its namespace, or a namespace's
    quota (``platform.namespace_quotas``) cannot hold its workloads at their largest."""
    rules = {namespace: NamespaceRules(
        limit_range=cluster_objects.limit_range(namespace),
        quota=cluster_objects.resource_quota(namespace, environment.platform.namespace_quotas[namespace]),
        sidecar=mesh_proxy) for namespace in cluster_objects.application_namespaces()}
    problems = admission_problems(rules, manifests)
    if problems:
        raise AdmissionError(environment.name, problems)


def environment_admission_problems(environment: Environment) -> list[AdmissionProblem]:
    """What ``check_admission`` finds in the workloads layer of an environment, before anything is synthesized: its
    manifests (with placeholders for what other layers make, which does not change what pods request), the chart
    Deployments and the mesh proxy, all from the environment's file and values files."""
    manifests = [*workloads.inference_manifests(environment, workloads.PLACEHOLDER_REFS),
                 *workloads.agent_manifests(environment), *workloads.training_manifests(environment),
                 *workloads.mlops_manifests(environment, workloads.PLACEHOLDER_REFS),
                 *chart_deployments(environment.name)]
    linkerd = release_values("linkerd-control-plane", environment.name, linkerd_identity.control_plane_values())
    try:
        check_admission(environment, manifests, mesh_proxy=mesh_proxy_resources(linkerd))
    except AdmissionError as error:
        return error.problems
    return []
