"""Layers wire together through remote state in the S3 backend, and nothing machine-specific is synthesized."""

import re
from pathlib import Path

import pytest

from tests_support import ENVIRONMENT_NAMES, resources

REMOTE_OUTPUT = re.compile(r"\$\{data\.terraform_remote_state\.([\w-]+)\.outputs\.([\w-]+)\}")


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_each_layer_has_an_s3_backend_with_lockfile_and_its_own_key(stacks, environments, env_name):
    backend = environments[env_name].state_backend
    for layer in ("network", "cluster"):
        s3 = stacks[f"{env_name}-{layer}"]["terraform"]["backend"]["s3"]
        assert s3 == {"bucket": backend.bucket, "key": f"mlops-platform/{env_name}/{layer}.tfstate",
                      "region": backend.region, "encrypt": True, "use_lockfile": True,
                      "kms_key_id": backend.kms_key_arn}


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_the_cluster_layer_reads_only_outputs_the_network_and_delivery_layers_of_the_same_environment_write(
        stacks, env_name):
    cluster = stacks[f"{env_name}-cluster"]
    remote_states = cluster["data"]["terraform_remote_state"]
    layer_of_key = {state["config"]["key"]: name for name, state in remote_states.items()}
    assert sorted(layer_of_key) == [f"mlops-platform/{env_name}/{layer}.tfstate" for layer in ("delivery", "network")]
    used = REMOTE_OUTPUT.findall(str(cluster["resource"]))
    assert used, "the cluster layer should take the VPC and subnets from the network layer"
    assert {state for state, _ in used} == set(remote_states)
    for key, state_name in layer_of_key.items():
        layer = key.rsplit("/", 1)[1].removesuffix(".tfstate")
        assert {o for s, o in used if s == state_name} <= set(stacks[f"{env_name}-{layer}"]["output"])


def test_the_cluster_is_placed_in_the_private_subnets_of_the_network_layer(stacks):
    cluster = next(iter(resources(stacks["prod-cluster"], "aws_eks_cluster").values()))
    subnet_outputs = [REMOTE_OUTPUT.match(ref).group(2) for ref in cluster["vpc_config"]["subnet_ids"]]
    assert len(subnet_outputs) == 3
    network_outputs = stacks["prod-network"]["output"]
    assert sorted(network_outputs[o]["value"] for o in subnet_outputs) == sorted(
        f"${{aws_subnet.{name}.id}}" for name, subnet in resources(stacks["prod-network"], "aws_subnet").items()
        if "/private-" in subnet["//"]["metadata"]["path"])


def test_no_machine_path_is_synthesized(synth_outdir, stacks):
    text = str(stacks)
    repo = str(Path(__file__).resolve().parent.parent)
    for fragment in (str(synth_outdir.parent), repo, "/work/", "/home/", "/root/", "/tmp/pytest"):
        assert fragment not in text
