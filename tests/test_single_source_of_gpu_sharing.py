"""Changing a pool's replicas or MIG layout in the environment file changes the node group and the GPU operator
values together, with nothing else to edit: both are generated from the pool."""

import json

import pytest
import yaml

from platform_config.catalogue import load_catalogue
from platform_config.loader import DEFAULT_ENV_DIR, load_environment
from tests_support import resources

#: Two MIG layouts that fit an 80 GB GPU and offer every profile dev's workloads ask for (3g.40gb, 2g.20gb and
#: 1g.10gb); the edit picks one the committed file does not use.
LAYOUTS = ({"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 1}, {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2})
GPUS_PER_NODE = load_catalogue().instance_types["p4de.24xlarge"].gpus


@pytest.fixture(scope="module")
def edit():
    """New sharing settings for dev's A100 pools, each different from what the committed file says."""
    pools = yaml.safe_load((DEFAULT_ENV_DIR / "dev.yaml").read_text())["node_pools"]
    replicas = pools["a100-timeslice"]["gpu"]["sharing"]["replicas"]
    layout = pools["a100-mig"]["gpu"]["sharing"]["layout"]
    return {"replicas": replicas + 1 if replicas < load_catalogue().time_slicing_replicas.max else replicas - 1,
            "layout": next(candidate for candidate in LAYOUTS if candidate != layout)}


@pytest.fixture(scope="module")
def edited_dev(tmp_path_factory, edit):
    """dev with other replicas on the A100 time-slicing pool and another layout on the MIG pool, synthesized;
    nothing else in the file is edited."""
    from cdktf import App

    from modules.app import build_platform

    data = yaml.safe_load((DEFAULT_ENV_DIR / "dev.yaml").read_text())
    data["node_pools"]["a100-timeslice"]["gpu"]["sharing"]["replicas"] = edit["replicas"]
    data["node_pools"]["a100-mig"]["gpu"]["sharing"]["layout"] = edit["layout"]
    folder = tmp_path_factory.mktemp("edited")
    (folder / "dev.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    outdir = folder / "out"
    app = App(outdir=str(outdir))
    build_platform(app, [load_environment(folder / "dev.yaml")])
    app.synth()
    return {layer: json.loads((outdir / "stacks" / f"dev-{layer}" / "cdk.tf.json").read_text())
            for layer in ("cluster", "platform")}


def autoscaler_tags(cluster_stack, pool):
    group = next(n for n, g in resources(cluster_stack, "aws_eks_node_group").items()
                 if g["node_group_name"] == pool)
    return {t["tag"]["key"].rsplit("/", 2)[-2] + "/" + t["tag"]["key"].rsplit("/", 1)[-1]: t["tag"]["value"]
            for t in resources(cluster_stack, "aws_autoscaling_group_tag").values()
            if f".{group}." in t["autoscaling_group_name"] and "/resources/" in t["tag"]["key"]}


def operator_values(platform_stack):
    release = next(r for r in resources(platform_stack, "helm_release").values() if r["name"] == "gpu-operator")
    return yaml.safe_load(release["values"][0])


def test_new_replicas_reach_the_autoscaler_tags_and_the_device_plugin_config(stacks, edited_dev, edit):
    before = autoscaler_tags(stacks["dev-cluster"], "a100-timeslice")
    after = autoscaler_tags(edited_dev["cluster"], "a100-timeslice")
    assert after == {"nvidia.com/gpu": str(GPUS_PER_NODE * edit["replicas"])} != before
    entry = yaml.safe_load(operator_values(edited_dev["platform"])["devicePlugin"]["config"]["data"]["a100-timeslice"])
    assert entry["sharing"]["timeSlicing"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": edit["replicas"]}]


def test_a_new_mig_layout_reaches_the_autoscaler_tags_and_the_mig_manager_config(stacks, edited_dev, edit):
    before = autoscaler_tags(stacks["dev-cluster"], "a100-mig")
    after = autoscaler_tags(edited_dev["cluster"], "a100-mig")
    # A partitioned GPU is not offered whole: the MIG pool says nvidia.com/gpu 0.
    assert after == {**{f"nvidia.com/mig-{profile}": str(GPUS_PER_NODE * count)
                        for profile, count in edit["layout"].items()}, "nvidia.com/gpu": "0"} != before
    config = yaml.safe_load(operator_values(edited_dev["platform"])["migManager"]["config"]["data"]["config.yaml"])
    assert config["mig-configs"]["a100-mig"][0]["mig-devices"] == edit["layout"]


def test_the_node_label_still_names_the_regenerated_entries(edited_dev):
    labels = {g["node_group_name"]: g["labels"] for g in resources(edited_dev["cluster"],
                                                                   "aws_eks_node_group").values()}
    values = operator_values(edited_dev["platform"])
    assert labels["a100-timeslice"]["nvidia.com/device-plugin.config"] in values["devicePlugin"]["config"]["data"]
    mig = yaml.safe_load(values["migManager"]["config"]["data"]["config.yaml"])["mig-configs"]
    assert labels["a100-mig"]["nvidia.com/mig.config"] in mig
