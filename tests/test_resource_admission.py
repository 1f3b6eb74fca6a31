"""The API server admits every container of every pod template the platform builds, under its namespace's
LimitRange, and each namespace's ResourceQuota holds its workloads at their largest. First the rule itself
(platform_config/resource_admission.py), then the rule on the synthesized stacks, then the defect put back."""

from fractions import Fraction

import pytest
import yaml

from platform_config.helm_values import chart_catalogue
from platform_config.resource_admission import (
    NamespaceRules,
    admission_problems,
    admit_container,
    chart_deployment,
    mesh_proxy_resources,
    most_pods,
    pod_requests,
    pod_specs,
    quantity,
    queue_admissions,
    stored_limit_item,
)
from tests_support import application_manifests, manifest_of, resources

ENVIRONMENTS = ["dev", "staging", "prod"]


def limit_range(**item):
    return {"kind": "LimitRange", "spec": {"limits": [{"type": "Container", **item}]}}


OLD_DEFAULTS = limit_range(defaultRequest={"cpu": "100m", "memory": "256Mi"}, default={"cpu": "1", "memory": "1Gi"})


# --- the rule ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [
    ("100m", Fraction(1, 10)), ("4", Fraction(4)), ("1.5", Fraction(3, 2)), ("256Mi", Fraction(256 * 2**20)),
    ("1Gi", Fraction(2**30)), ("1Ti", Fraction(2**40)), ("2G", Fraction(2 * 10**9)), ("1e3", Fraction(1000)),
])
def test_quantities_parse_exactly(text, value):
    assert quantity(text) == value


def test_a_quantity_that_is_not_one_is_refused():
    with pytest.raises(ValueError, match="12Xi"):
        quantity("12Xi")


def test_a_defaulted_limit_below_an_explicit_request_is_refused():
    admitted, problems = admit_container({"requests": {"cpu": "4", "memory": "32Gi"}, "limits": {"memory": "64Gi"}},
                                         OLD_DEFAULTS)
    assert admitted["limits"] == {"cpu": "1", "memory": "64Gi"}
    assert problems == ["cpu request 4 is above its limit 1"]


def test_a_missing_request_is_first_set_to_the_containers_own_limit_then_defaulted():
    admitted, problems = admit_container({"limits": {"cpu": "2"}}, OLD_DEFAULTS)
    # The request comes from the container's limit (API defaulting), not from defaultRequest (LimitRanger, later).
    assert admitted == {"requests": {"cpu": "2", "memory": "256Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}}
    assert problems == []


def test_the_limit_range_is_stored_with_default_from_max_and_default_request_from_default_then_min():
    stored = stored_limit_item({"type": "Container", "max": {"cpu": "8"}, "min": {"memory": "64Mi"},
                                "default": {"memory": "1Gi"}})
    assert stored["default"] == {"memory": "1Gi", "cpu": "8"}
    assert stored["defaultRequest"] == {"memory": "1Gi", "cpu": "8"}
    only_min = stored_limit_item({"type": "Container", "min": {"memory": "64Mi"}})
    assert only_min["defaultRequest"] == {"memory": "64Mi"}


def test_values_outside_min_and_max_are_refused():
    bounded = limit_range(min={"memory": "128Mi"}, max={"cpu": "2"})
    _, problems = admit_container({"requests": {"cpu": "3", "memory": "64Mi"}, "limits": {"memory": "1Gi"}}, bounded)
    assert "cpu request 3 is above the LimitRange max 2" in problems
    assert "memory request 64Mi is below the LimitRange min 128Mi" in problems


def test_an_extended_resource_needs_a_limit_equal_to_its_request():
    _, problems = admit_container({"requests": {"nvidia.com/gpu": "1"}}, None)
    assert problems and "extended resource" in problems[0]
    assert admit_container({"limits": {"nvidia.com/mig-1g.10gb": "1"}}, None)[1] == []


def test_a_resource_the_quota_counts_must_end_with_a_request():
    assert admit_container({}, None, quota_tracked=["cpu"])[1] == [
        "cpu: the namespace's ResourceQuota counts it, and the container has no request"]
    assert admit_container({}, limit_range(defaultRequest={"cpu": "100m"}), quota_tracked=["cpu"])[1] == []


def test_pod_specs_are_found_in_every_kind_that_carries_one():
    container = {"name": "c", "image": "i"}
    runtime = {"spec": {"template": {"spec": {"replicatedJobs": [
        {"name": "node", "template": {"spec": {"template": {"spec": {"containers": [container]}}}}}]}}}}
    cron = {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"initContainers": [container],
                                                                     "containers": [container]}}}}}}
    assert [p for p, _ in pod_specs(runtime)] == [".spec.template.spec.replicatedJobs[0].template.spec.template.spec"]
    assert [p for p, _ in pod_specs(cron)] == [".spec.jobTemplate.spec.template.spec"]


def test_a_pod_counts_the_larger_of_its_containers_sum_and_its_largest_init_container():
    pod = {"initContainers": [{"name": "fetch", "resources": {"requests": {"cpu": "3", "memory": "1Gi"}}}],
           "containers": [{"name": "a", "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}},
                          {"name": "b", "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}}]}
    sidecar = {"requests": {"cpu": "100m"}}
    assert pod_requests(pod, limit_range(defaultRequest={"memory": "20Mi"}), [sidecar]) == {
        "cpu": Fraction(3), "memory": Fraction(4 * 2**30 + 20 * 2**20)}


def test_the_most_pods_of_a_deployment_are_its_autoscalers_maximum_plus_the_rollout_surge():
    def deployment(name, strategy=None):
        return {"kind": "Deployment", "metadata": {"name": name, "namespace": "n"},
                "spec": {"replicas": 2, **({"strategy": strategy} if strategy else {})}}
    hpa = {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "a", "namespace": "n"},
           "spec": {"scaleTargetRef": {"name": "a"}, "maxReplicas": 6}}
    manifests = [deployment("a"), hpa, deployment("b", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0}}),
                 deployment("c", {"type": "Recreate"})]
    assert most_pods(manifests) == {("n", "a"): 8, ("n", "b"): 2, ("n", "c"): 2}


def test_kueue_may_admit_the_nominal_quotas_of_every_cluster_queue_that_selects_the_namespace():
    def queue(namespace, cpu):
        return {"kind": "ClusterQueue", "metadata": {"name": namespace + cpu}, "spec": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "resourceGroups": [{"flavors": [{"name": "f", "resources": [{"name": "cpu", "nominalQuota": cpu}]}]}]}}
    assert queue_admissions([queue("training", "8"), queue("training", "16"), queue("other", "4")], "training") == {
        "cpu": Fraction(24)}


# --- the rule on the synthesized stacks -------------------------------------------------------------------------

def namespace_rules(stacks, env_name, *, limit_range_override=None):
    """Each namespace's LimitRange, ResourceQuota and mesh proxy, as the platform stack synthesizes them."""
    platform = stacks[f"{env_name}-platform"]
    by_namespace = {}
    for resource_type in ("kubernetes_limit_range_v1", "kubernetes_resource_quota_v1"):
        for body in resources(platform, resource_type).values():
            manifest = manifest_of(resource_type, body, platform)
            by_namespace.setdefault(manifest["metadata"]["namespace"], {})[manifest["kind"]] = manifest
    linkerd = next(yaml.safe_load(r["values"][0]) for r in resources(platform, "helm_release").values()
                   if r["name"] == "linkerd-control-plane")
    meshed = {body["metadata"]["name"] for body in resources(platform, "kubernetes_namespace_v1").values()
              if (body["metadata"].get("annotations") or {}).get("linkerd.io/inject") == "enabled"}
    assert by_namespace and meshed
    return {namespace: NamespaceRules(
        limit_range=limit_range_override or objects.get("LimitRange"), quota=objects.get("ResourceQuota"),
        sidecar=mesh_proxy_resources(linkerd) if namespace in meshed else None)
        for namespace, objects in by_namespace.items()}


def workload_manifests(stacks, env_name):
    """Every manifest the in-cluster layers deliver through the raw chart (the kubernetes-provider resources hold no
    pod templates), and each chart release that sets its replicas and resources as the Deployment they describe."""
    found = []
    pins = chart_catalogue()
    for layer in ("platform", "workloads"):
        for release in resources(stacks[f"{env_name}-{layer}"], "helm_release").values():
            values = yaml.safe_load(release["values"][0])
            if release["chart"] == "raw":
                found += values["resources"]
                # What an Argo CD Application among them deploys (inference servers, agent runtimes).
                found += [m for a in values["resources"] if a["kind"] == "Application"
                          for m in application_manifests(a)]
            elif release["name"] in pins and pins[release["name"]].pods:
                found.append(chart_deployment(release["name"], release["namespace"], values,
                                              pins[release["name"]].pods))
    return found


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_container_is_admitted_and_every_quota_holds_its_namespace_at_its_largest(stacks, env_name):
    manifests = workload_manifests(stacks, env_name)
    assert any(m["kind"] == "ClusterTrainingRuntime" for m in manifests)
    assert {("mlops", "mlflow"), ("mlops", "reloader")} <= {
        (m["metadata"].get("namespace"), m["metadata"]["name"]) for m in manifests if m["kind"] == "Deployment"}
    assert admission_problems(namespace_rules(stacks, env_name), manifests) == []


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_with_the_old_limit_range_the_inference_servers_are_refused(stacks, env_name):
    """The defect put back: a default CPU limit of 1 under servers that request 4 CPUs."""
    problems = admission_problems(namespace_rules(stacks, env_name, limit_range_override=OLD_DEFAULTS),
                                  workload_manifests(stacks, env_name))
    assert any(p.field.startswith("inference/Deployment vllm ") and p.message == "cpu request 4 is above its limit 1"
               for p in problems)


def test_a_quota_below_the_largest_scale_is_reported_with_its_field(stacks):
    rules = namespace_rules(stacks, "prod")
    small = {**rules["training"].quota, "spec": {"hard": {**rules["training"].quota["spec"]["hard"],
                                                          "requests.cpu": "512"}}}
    rules["training"] = NamespaceRules(limit_range=rules["training"].limit_range, quota=small,
                                       sidecar=rules["training"].sidecar)
    problems = admission_problems(rules, workload_manifests(stacks, "prod"))
    [problem] = problems
    assert problem.field == "platform.namespace_quotas.training.cpu"
    assert problem.values_file is None
    assert problem.message.startswith("ResourceQuota requests.cpu 512 of namespace training cannot hold the "
                                      "namespace's workloads at their largest")
