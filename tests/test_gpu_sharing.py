"""GPU labels, autoscaler tags and operator configuration come from the pools (pure Python, no synth).

Each test states a rule for every GPU pool of every environment file, so it holds for a new environment, a
changed replica count or a different MIG mix; the exact generated values are pinned by the snapshots only.
"""

from platform_config import gpu_sharing
from platform_config.catalogue import load_catalogue
from platform_config.models import SharingMode

AUTOSCALER_TEMPLATE = "k8s.io/cluster-autoscaler/node-template"


def gpu_pools(environments):
    return [(env, name, pool) for env in environments.values() for name, pool in env.gpu_pools().items()]


def gpus_per_node(pool) -> int:
    """Physical GPUs of one node of the pool, from the catalogue (every type of a pool carries the same GPUs)."""
    return load_catalogue().instance_types[pool.instance_types[0]].gpus


def test_gpu_pool_labels_select_the_pool_by_our_own_labels_and_name_its_sharing_config(environments):
    for env, name, pool in gpu_pools(environments):
        labels = gpu_sharing.node_labels(name, pool)
        assert labels["mlops-platform/pool"] == name, (env.name, name)
        assert labels["mlops-platform/gpu-model"] == pool.gpu.model, (env.name, name)
        assert labels["mlops-platform/gpu-sharing"] == pool.gpu.sharing.mode.value, (env.name, name)
        assert labels["nvidia.com/gpu.present"] == "true", (env.name, name)
        # exactly one sharing mode per node: the operator reads one of the two labels, never both
        mode_labels = {"nvidia.com/mig.config", "nvidia.com/device-plugin.config"} & set(labels)
        expected = "nvidia.com/mig.config" if pool.gpu.sharing.mode is SharingMode.MIG \
            else "nvidia.com/device-plugin.config"
        assert mode_labels == {expected}, (env.name, name)


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


def test_every_time_sliced_pool_gets_its_replicas_and_refuses_multi_gpu_requests(environments):
    for env, name, pool in gpu_pools(environments):
        if pool.gpu.sharing.mode is not SharingMode.TIME_SLICING:
            continue
        entry = gpu_sharing.device_plugin_config(env)[gpu_sharing.node_labels(name, pool)[
            "nvidia.com/device-plugin.config"]]
        assert entry["sharing"]["timeSlicing"]["resources"] == [
            {"name": "nvidia.com/gpu", "replicas": pool.gpu.sharing.replicas}], (env.name, name)
        assert entry["sharing"]["timeSlicing"]["failRequestsGreaterThanOne"] is True, (env.name, name)


def test_every_mig_pool_layout_is_the_one_the_operator_config_advertises(environments):
    for env, name, pool in gpu_pools(environments):
        if pool.gpu.sharing.mode is not SharingMode.MIG:
            continue
        config = gpu_sharing.mig_parted_config(env)["mig-configs"][gpu_sharing.node_labels(name, pool)[
            "nvidia.com/mig.config"]]
        assert config == [{"devices": "all", "mig-enabled": True, "mig-devices": dict(pool.gpu.sharing.layout)}], \
            (env.name, name)


def test_a_node_advertises_its_gpus_times_replicas_its_mig_slices_per_gpu_or_its_whole_gpus(environments):
    for env, name, pool in gpu_pools(environments):
        gpus = gpus_per_node(pool)
        sharing = pool.gpu.sharing
        if sharing.mode is SharingMode.MIG:
            expected = {f"nvidia.com/mig-{profile}": count * gpus for profile, count in sharing.layout.items()
                        if count}
        elif sharing.mode is SharingMode.TIME_SLICING:
            expected = {"nvidia.com/gpu": gpus * sharing.replicas}
        else:  # whole GPUs: one unit per physical GPU
            expected = {"nvidia.com/gpu": gpus}
        assert gpu_sharing.node_resources(pool) == expected, (env.name, name)
    for env in environments.values():
        cpu_pools = [pool for pool in env.node_pools.values() if pool.gpu is None]
        assert all(gpu_sharing.node_resources(pool) == {} for pool in cpu_pools), env.name


def test_autoscaler_tags_describe_an_empty_gpu_group_with_labels_taint_and_resources(environments):
    """Cluster Autoscaler scales a group up from zero only from these tags: they must carry every label the
    workloads select on, the GPU taint, and what one node advertises."""
    for env, name, pool in gpu_pools(environments):
        tags = gpu_sharing.autoscaler_node_template_tags(name, pool)
        for label, value in gpu_sharing.node_labels(name, pool).items():
            assert tags[f"{AUTOSCALER_TEMPLATE}/label/{label}"] == value, (env.name, name, label)
        assert tags[f"{AUTOSCALER_TEMPLATE}/taint/nvidia.com/gpu"] == "true:NoSchedule", (env.name, name)
        for resource, count in gpu_sharing.node_resources(pool).items():
            assert tags[f"{AUTOSCALER_TEMPLATE}/resources/{resource}"] == str(count), (env.name, name, resource)
