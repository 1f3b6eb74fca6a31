"""Whole GPUs for multi-GPU training: the device plugin's rule on the synthesized output, and the scheduling check
that refuses a multi-GPU pod on a time-sliced pool before anything is built."""

from __future__ import annotations

import copy

import pytest
import yaml

from platform_config import gpu_sharing
from platform_config.images import ecr_registry
from platform_config.models import Environment, SharingMode
from platform_config.scheduling import SchedulingError, check_schedulable, demands_from_manifests
from platform_config.workloads import training_runtimes
from tests_support import resources


def runtimes_of(env: Environment) -> list[dict]:
    return training_runtimes(env.workloads.training.distributed_placement,
                             registry=ecr_registry(env.account_id, env.region))


GPU = "nvidia.com/gpu"
POOL_LABEL = "mlops-platform/pool"
PLUGIN_LABEL = "nvidia.com/device-plugin.config"


def helm_values(stack: dict, release: str) -> dict:
    [body] = [r for r in resources(stack, "helm_release").values() if r["name"] == release]
    return yaml.safe_load(body["values"][0])


def pod_templates(stack: dict) -> list[tuple[str, dict]]:
    """Every pod template the workloads layer delivers: Deployments, StatefulSets and training runtimes."""
    found = []
    for release in resources(stack, "helm_release").values():
        if release["chart"] != "raw":
            continue
        for manifest in yaml.safe_load(release["values"][0])["resources"]:
            kind, name = manifest.get("kind"), manifest.get("metadata", {}).get("name")
            if kind in ("Deployment", "StatefulSet"):
                found.append((f"{kind} {name}", manifest["spec"]["template"]["spec"]))
            if kind in ("ClusterTrainingRuntime", "TrainingRuntime"):
                found += [(f"{kind} {name}", job["template"]["spec"]["template"]["spec"])
                          for job in manifest["spec"]["template"]["spec"]["replicatedJobs"]]
    return found


def device_plugin_refusals(stacks: dict, env: str) -> list[str]:
    """Containers the NVIDIA device plugin would refuse: more than one nvidia.com/gpu on a node whose
    device-plugin config (named by the node group's label) has ``failRequestsGreaterThanOne``."""
    entries = {key: yaml.safe_load(text) for key, text in
               helm_values(stacks[f"{env}-platform"], "gpu-operator")["devicePlugin"]["config"]["data"].items()}
    refusing = set()
    for group in resources(stacks[f"{env}-cluster"], "aws_eks_node_group").values():
        entry = entries.get(group.get("labels", {}).get(PLUGIN_LABEL), {})
        if entry.get("sharing", {}).get("timeSlicing", {}).get("failRequestsGreaterThanOne"):
            refusing.add(group["labels"][POOL_LABEL])
    refused = []
    for workload, pod in pod_templates(stacks[f"{env}-workloads"]):
        pool = pod.get("nodeSelector", {}).get(POOL_LABEL)
        for container in pod["containers"]:
            asked = int(container.get("resources", {}).get("limits", {}).get(GPU, 0))
            if pool in refusing and asked > 1:
                refused.append(f"{workload}: {container['name']} asks for {asked} {GPU} on pool {pool}")
    return refused


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_no_container_asks_a_time_sliced_pool_for_more_than_one_gpu(stacks, environments, env):
    assert device_plugin_refusals(stacks, env) == []


def test_the_rule_finds_the_distributed_runtime_put_back_on_a_time_sliced_pool(stacks):
    broken = copy.deepcopy(stacks)
    stack = broken["prod-workloads"]
    for release in resources(stack, "helm_release").values():
        if release["chart"] != "raw":
            continue
        values = yaml.safe_load(release["values"][0])
        for manifest in values["resources"]:
            if manifest["kind"] == "ClusterTrainingRuntime" and manifest["metadata"]["name"].startswith("platform-t"):
                [job] = manifest["spec"]["template"]["spec"]["replicatedJobs"]
                job["template"]["spec"]["template"]["spec"]["nodeSelector"] = {POOL_LABEL: "h100-timeslice"}
        release["values"] = [yaml.safe_dump(values)]
    assert device_plugin_refusals(broken, "prod") == [
        f"ClusterTrainingRuntime {name}: node asks for 8 nvidia.com/gpu on pool h100-timeslice"
        for name in ("platform-torch-distributed", "platform-tensorflow-distributed")]


def test_prod_runs_the_distributed_runtimes_on_whole_gpus_with_several_per_node(stacks, environments):
    prod = environments["prod"]
    placement = prod.workloads.training.distributed_placement
    assert placement is not None
    assert prod.node_pools[placement.pool].gpu.sharing.mode is SharingMode.EXCLUSIVE
    plugin = helm_values(stacks["prod-platform"], "gpu-operator")["devicePlugin"]["config"]["data"]
    groups = {g["labels"][POOL_LABEL]: g for g in resources(stacks["prod-cluster"], "aws_eks_node_group").values()}
    entry = yaml.safe_load(plugin[groups[placement.pool]["labels"][PLUGIN_LABEL]])
    assert "sharing" not in entry
    runtimes = [(w, pod) for w, pod in pod_templates(stacks["prod-workloads"]) if w.startswith("ClusterTraining")]
    assert runtimes
    for _, pod in runtimes:
        assert pod["nodeSelector"] == {POOL_LABEL: placement.pool}
        assert int(pod["containers"][0]["resources"]["limits"][GPU]) > 1


def test_whole_gpu_pools_advertise_one_gpu_per_physical_gpu_and_name_a_plugin_entry_without_sharing(environments):
    for env in environments.values():
        plugin = gpu_sharing.device_plugin_config(env)
        for name, pool in env.gpu_pools().items():
            if pool.gpu.sharing.mode is SharingMode.EXCLUSIVE:
                assert gpu_sharing.node_resources(pool) == {GPU: pool.instance.gpus}
                label = gpu_sharing.node_labels(name, pool)[PLUGIN_LABEL]
                assert plugin[label] == {"version": "v1"}


def with_distributed_placement(env: Environment, pool: str, count: int) -> Environment:
    data = env.model_dump(mode="json")
    data["workloads"]["training"]["distributed_placement"] = {"pool": pool, "gpu": {"resource": GPU, "count": count}}
    return Environment.model_validate(data)


def test_the_scheduling_check_refuses_multi_gpu_training_nodes_on_a_time_sliced_pool(environments):
    env = with_distributed_placement(environments["prod"], "h100-timeslice", 8)
    demands = demands_from_manifests(runtimes_of(env))
    with pytest.raises(SchedulingError) as refused:
        check_schedulable(env, demands)
    assert refused.value.problems[0] == (
        "ClusterTrainingRuntime platform-torch-distributed (node) requests nvidia.com/gpu x8, 8 in one container: "
        "pool h100-timeslice time-slices its GPUs and the device plugin refuses more than one nvidia.com/gpu per "
        "container (failRequestsGreaterThanOne); place it on a pool with sharing mode exclusive (pools offering "
        "whole GPUs: h100-whole)")
    assert len(refused.value.problems) == 2  # the torch and the TensorFlow runtime


def test_training_nodes_on_whole_gpus_must_fit_one_node(environments):
    env = with_distributed_placement(environments["prod"], "h100-whole", 16)
    with pytest.raises(SchedulingError) as refused:
        check_schedulable(env, demands_from_manifests(runtimes_of(env)))
    assert "requests nvidia.com/gpu x16 per pod: one node of pool h100-whole has 8" in refused.value.problems[0]


def test_runtime_templates_fit_without_holding_capacity_of_their_own(environments):
    """The queues' quota already counts what training jobs use: a runtime adds no capacity demand."""
    env = environments["prod"]
    demands = demands_from_manifests(runtimes_of(env))
    assert demands and all(d.template for d in demands)
    check_schedulable(env, demands * 10)
