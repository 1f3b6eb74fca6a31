"""Scale from zero: the Cluster Autoscaler's picture of an empty pool is what the GPU Operator will make of its nodes.

For a node group at zero nodes the autoscaler reads the ``k8s.io/cluster-autoscaler/node-template/resources/*``
tags of its Auto Scaling group; a GPU resource without a tag is inferred from the instance type (8 whole GPUs on a
p4de). If the picture differs from what the node advertises once the GPU Operator has configured it, the autoscaler
adds nodes that cannot run the pending pod (or never adds the one that could).

What the operator advertises is computed here from the synthesized stacks alone: the node group's labels, the GPU
operator release's MIG and device-plugin configurations (``mig.strategy: mixed``), and the GPUs of the instance type.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from platform_config.catalogue import load_catalogue
from tests_support import ENVIRONMENT_NAMES, resources

TEMPLATE_RESOURCES = "k8s.io/cluster-autoscaler/node-template/resources/"


def _gpu_operator_values(platform_stack: dict) -> dict:
    [release] = [r for r in resources(platform_stack, "helm_release").values() if r["chart"] == "gpu-operator"]
    return yaml.safe_load(release["values"][0])


def advertised_resources(group: dict, operator_values: dict) -> dict[str, int]:
    """Extended resources a node of ``group`` advertises after the GPU Operator configured it: MIG slices per the
    MIG config its label selects (the operator's default for unlabelled GPU nodes), whole GPUs where MIG is off,
    multiplied by the time-slicing replicas of the device-plugin config its label selects."""
    labels = group.get("labels") or {}
    if labels.get("nvidia.com/gpu.present") != "true":
        return {}
    gpus = load_catalogue().instance_types[group["instance_types"][0]].gpus
    mig = operator_values["migManager"]["config"]
    mig_configs = yaml.safe_load(mig["data"]["config.yaml"])["mig-configs"]
    [device_config] = mig_configs[labels.get("nvidia.com/mig.config", mig["default"])]
    advertised: dict[str, int] = {}
    if device_config["mig-enabled"]:
        for profile, count in device_config["mig-devices"].items():
            advertised[f"nvidia.com/mig-{profile}"] = gpus * count
        advertised["nvidia.com/gpu"] = 0  # mixed strategy: a partitioned GPU is not offered whole
        return advertised
    plugin = operator_values["devicePlugin"]["config"]
    key = labels.get("nvidia.com/device-plugin.config", plugin.get("default", ""))
    replicas = 1
    if key:
        sharing = yaml.safe_load(plugin["data"][key]).get("sharing", {})
        for resource in (sharing.get("timeSlicing") or {}).get("resources", []):
            if resource["name"] == "nvidia.com/gpu":
                replicas = resource["replicas"]
    return {"nvidia.com/gpu": gpus * replicas}


def template_resources(cluster_stack: dict, group_name: str) -> dict[str, int]:
    asg = f"${{aws_eks_node_group.{group_name}.resources[0].autoscaling_groups[0].name}}"
    return {t["tag"]["key"].removeprefix(TEMPLATE_RESOURCES): int(t["tag"]["value"])
            for t in resources(cluster_stack, "aws_autoscaling_group_tag").values()
            if t["autoscaling_group_name"] == asg and t["tag"]["key"].startswith(TEMPLATE_RESOURCES)}


def template_mismatches(cluster_stack: dict, platform_stack: dict) -> list[str]:
    operator_values = _gpu_operator_values(platform_stack)
    problems = []
    for name, group in resources(cluster_stack, "aws_eks_node_group").items():
        expected = advertised_resources(group, operator_values)
        tagged = template_resources(cluster_stack, name)
        if tagged != expected:
            problems.append(f"{group['node_group_name']}: the autoscaler's template says {tagged}, the node will "
                            f"advertise {expected}")
    return problems


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_for_every_pool_the_template_resources_equal_what_the_gpu_operator_will_advertise(stacks, env_name):
    assert template_mismatches(stacks[f"{env_name}-cluster"], stacks[f"{env_name}-platform"]) == []


def test_a_mig_pool_tells_the_autoscaler_it_offers_no_whole_gpu(stacks):
    mig_pools = 0
    for stack in stacks.values():
        for name, group in resources(stack, "aws_eks_node_group").items():
            if "nvidia.com/mig.config" in (group.get("labels") or {}):
                mig_pools += 1
                assert template_resources(stack, name)["nvidia.com/gpu"] == 0
    assert mig_pools


def test_the_template_rule_finds_a_mig_pool_without_its_zero_gpu_tag(stacks):
    stack = copy.deepcopy(stacks["prod-cluster"])
    tags = stack["resource"]["aws_autoscaling_group_tag"]
    mig_groups = [n for n, g in resources(stack, "aws_eks_node_group").items()
                  if "nvidia.com/mig.config" in (g.get("labels") or {})]
    assert mig_groups
    for address in [a for a, t in tags.items() if t["tag"]["key"] == f"{TEMPLATE_RESOURCES}nvidia.com/gpu"
                    and any(g in t["autoscaling_group_name"] for g in mig_groups)]:
        del tags[address]
    assert [p.split(":")[0] for p in template_mismatches(stack, stacks["prod-platform"])] == ["a100-mig"]


def test_the_template_rule_finds_time_slicing_replicas_the_tags_do_not_count(stacks):
    platform = copy.deepcopy(stacks["prod-platform"])
    [release] = [r for r in resources(platform, "helm_release").values() if r["chart"] == "gpu-operator"]
    values = yaml.safe_load(release["values"][0])
    changed = []
    for key, entry in values["devicePlugin"]["config"]["data"].items():
        config = yaml.safe_load(entry)
        if "timeSlicing" in config.get("sharing", {}):
            config["sharing"]["timeSlicing"]["resources"][0]["replicas"] += 1
            values["devicePlugin"]["config"]["data"][key] = yaml.safe_dump(config)
            changed.append(key)
    release["values"] = [yaml.safe_dump(values)]
    assert changed
    assert sorted(p.split(":")[0] for p in template_mismatches(stacks["prod-cluster"], platform)) == sorted(changed)
