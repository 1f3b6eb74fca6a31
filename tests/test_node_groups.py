"""The four node groups: instance types, AMIs, labels, the GPU taint, launch templates, scale-from-zero tags."""

import json

import pytest

from platform_config import gpu_sharing
from tests_support import by_path, reference_to, resources

GPU_TAINT = [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
EXPECTED = {
    "cpu": (["m5.2xlarge", "m5.4xlarge"], "AL2023_x86_64_STANDARD"),
    "a100-timeslice": (["p4de.24xlarge"], "AL2023_x86_64_NVIDIA"),
    "a100-mig": (["p4de.24xlarge"], "AL2023_x86_64_NVIDIA"),
    "h100-timeslice": (["p5.48xlarge"], "AL2023_x86_64_NVIDIA"),
    "h100-whole": (["p5.48xlarge"], "AL2023_x86_64_NVIDIA"),
}


def node_group(stack, pool):
    return by_path(stack, "aws_eks_node_group")[f"pool-{pool}/node-group"]


def launch_template(stack, pool):
    return by_path(stack, "aws_launch_template")[f"pool-{pool}/launch-template"]


def test_prod_has_the_four_node_groups_of_the_design_and_its_whole_gpu_pool(stacks):
    groups = {g["node_group_name"]: g for g in resources(stacks["prod-cluster"], "aws_eks_node_group").values()}
    assert {name: (g["instance_types"], g["ami_type"]) for name, g in groups.items()} == EXPECTED


@pytest.mark.parametrize("pool", ["a100-timeslice", "a100-mig", "h100-timeslice"])
@pytest.mark.parametrize("env_name", ["dev", "staging", "prod"])
def test_gpu_groups_carry_the_gpu_taint_and_the_sharing_labels(stacks, environments, env_name, pool):
    group = node_group(stacks[f"{env_name}-cluster"], pool)
    assert group["taint"] == GPU_TAINT
    labels = group["labels"]
    assert labels["mlops-platform/pool"] == pool
    assert labels["nvidia.com/gpu.present"] == "true"
    sharing_key = "nvidia.com/mig.config" if pool == "a100-mig" else "nvidia.com/device-plugin.config"
    assert labels[sharing_key] == pool
    env = environments[env_name]
    plugin_keys = gpu_sharing.device_plugin_config(env)
    mig_configs = gpu_sharing.mig_parted_config(env)["mig-configs"]
    assert labels[sharing_key] in (mig_configs if pool == "a100-mig" else plugin_keys)


def test_the_cpu_group_has_no_taint_and_only_its_pool_label(stacks):
    group = node_group(stacks["prod-cluster"], "cpu")
    assert "taint" not in group
    assert group["labels"] == {"mlops-platform/pool": "cpu"}


@pytest.mark.parametrize("pool", list(EXPECTED))
def test_every_group_uses_a_launch_template_with_imdsv2_hop_limit_1_encrypted_gp3_and_no_ssh(stacks, pool):
    stack = stacks["prod-cluster"]
    group = node_group(stack, pool)
    template = launch_template(stack, pool)
    assert reference_to("aws_launch_template", "id").match(group["launch_template"]["id"])
    assert group["launch_template"]["id"].split(".")[1] in resources(stack, "aws_launch_template")
    assert "remote_access" not in group
    assert "key_name" not in template
    assert template["metadata_options"]["http_tokens"] == "required"
    assert template["metadata_options"]["http_put_response_hop_limit"] == 1
    [root] = template["block_device_mappings"]
    assert root["ebs"]["encrypted"] == "true"
    assert root["ebs"]["volume_type"] == "gp3"
    assert reference_to("aws_kms_key", "arn").match(root["ebs"]["kms_key_id"])
    [node_sg] = [name for name, sg in resources(stack, "aws_security_group").items()
                 if sg["//"]["metadata"]["path"].endswith("/cluster/node-security-group")]
    assert template["vpc_security_group_ids"] == [f"${{aws_security_group.{node_sg}.id}}"]


def test_node_volumes_use_the_key_whose_policy_admits_the_autoscaling_service_role(stacks):
    stack = stacks["prod-cluster"]
    key_name = launch_template(stack, "a100-mig")["block_device_mappings"][0]["ebs"]["kms_key_id"].split(".")[1]
    policy = json.loads(resources(stack, "aws_kms_key")[key_name]["policy"])
    principals = [s["Principal"].get("AWS", "") for s in policy["Statement"]]
    # The network layer creates the role; the key names it through that layer's output.
    [role_name] = resources(stacks["prod-network"], "aws_iam_service_linked_role")
    outputs = stacks["prod-network"]["output"]
    [output] = [name for name, o in outputs.items()
                if o["value"] == f"${{aws_iam_service_linked_role.{role_name}.arn}}"]
    assert any(p.endswith(f".outputs.{output}}}") for p in principals)
    assert resources(stacks["prod-network"], "aws_iam_service_linked_role")[role_name]["aws_service_name"] == \
        "autoscaling.amazonaws.com"


def test_every_node_group_scales_within_the_sizes_of_its_pool_in_the_environment_file(stacks, environments):
    for env in environments.values():
        for name, pool in env.node_pools.items():
            scaling = node_group(stacks[f"{env.name}-cluster"], name)["scaling_config"]
            assert (scaling["min_size"], scaling["desired_size"], scaling["max_size"]) == (
                pool.min_size, pool.desired_size, pool.max_size), (env.name, name)


def test_the_autoscaler_owns_the_desired_size_after_creation(stacks):
    for group in resources(stacks["prod-cluster"], "aws_eks_node_group").values():
        assert group["lifecycle"]["ignore_changes"] == ["scaling_config[0].desired_size"]


def test_gpu_group_asgs_carry_the_node_template_tags_for_scale_from_zero(stacks):
    stack = stacks["dev-cluster"]
    group_name = next(name for name, g in resources(stack, "aws_eks_node_group").items()
                      if g["node_group_name"] == "h100-timeslice")
    tags = {t["tag"]["key"]: t["tag"]["value"] for t in resources(stack, "aws_autoscaling_group_tag").values()
            if t["autoscaling_group_name"] ==
            f"${{aws_eks_node_group.{group_name}.resources[0].autoscaling_groups[0].name}}"}
    prefix = "k8s.io/cluster-autoscaler/node-template"
    assert tags[f"{prefix}/taint/nvidia.com/gpu"] == "true:NoSchedule"
    assert tags[f"{prefix}/resources/nvidia.com/gpu"] == "16"  # 8 H100 x 2 replicas
    assert tags[f"{prefix}/label/nvidia.com/device-plugin.config"] == "h100-timeslice"
    assert tags[f"{prefix}/label/mlops-platform/pool"] == "h100-timeslice"
