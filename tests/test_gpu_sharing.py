"""GPU labels, autoscaler tags and operator configuration come from the pools (pure Python, no synth)."""

from platform_config import gpu_sharing


def test_time_slicing_pool_labels_name_its_device_plugin_config_entry(environments):
    pool = environments["prod"].node_pools["a100-timeslice"]
    assert gpu_sharing.node_labels("a100-timeslice", pool) == {
        "mlops-platform/pool": "a100-timeslice",
        "mlops-platform/gpu-model": "A100-80GB",
        "mlops-platform/gpu-sharing": "time-slicing",
        "k8s.amazonaws.com/accelerator": "nvidia-a100-80gb",
        "nvidia.com/gpu.present": "true",
        "nvidia.com/device-plugin.config": "a100-timeslice",
    }


def test_every_gpu_pool_label_names_an_entry_of_the_generated_operator_config(environments):
    for env in environments.values():
        plugin_keys = set(gpu_sharing.device_plugin_config(env))
        mig_names = set(gpu_sharing.mig_parted_config(env)["mig-configs"])
        for name, pool in env.gpu_pools().items():
            labels = gpu_sharing.node_labels(name, pool)
            if "nvidia.com/mig.config" in labels:
                assert labels["nvidia.com/mig.config"] in mig_names
            else:
                assert labels["nvidia.com/device-plugin.config"] in plugin_keys


def test_generated_configs_carry_the_replicas_and_layout_of_the_environment(environments):
    prod = environments["prod"]
    entry = gpu_sharing.device_plugin_config(prod)["h100-timeslice"]
    assert entry["sharing"]["timeSlicing"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 2}]
    assert entry["sharing"]["timeSlicing"]["failRequestsGreaterThanOne"] is True
    assert gpu_sharing.mig_parted_config(prod)["mig-configs"]["a100-mig"] == [{
        "devices": "all", "mig-enabled": True, "mig-devices": {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1}}]


def test_a_node_advertises_gpus_times_replicas_or_its_mig_slices(environments):
    pools = environments["prod"].node_pools
    assert gpu_sharing.node_resources(pools["a100-timeslice"]) == {"nvidia.com/gpu": 32}
    assert gpu_sharing.node_resources(pools["h100-timeslice"]) == {"nvidia.com/gpu": 16}
    assert gpu_sharing.node_resources(pools["a100-mig"]) == {
        "nvidia.com/mig-1g.10gb": 16, "nvidia.com/mig-2g.20gb": 8, "nvidia.com/mig-3g.40gb": 8}
    assert gpu_sharing.node_resources(pools["cpu"]) == {}


def test_autoscaler_tags_describe_an_empty_gpu_group_labels_taint_and_resources(environments):
    tags = gpu_sharing.autoscaler_node_template_tags("a100-mig", environments["dev"].node_pools["a100-mig"])
    prefix = "k8s.io/cluster-autoscaler/node-template"
    assert tags[f"{prefix}/label/mlops-platform/pool"] == "a100-mig"
    assert tags[f"{prefix}/label/nvidia.com/mig.config"] == "a100-mig"
    assert tags[f"{prefix}/taint/nvidia.com/gpu"] == "true:NoSchedule"
    assert tags[f"{prefix}/resources/nvidia.com/mig-3g.40gb"] == "8"
