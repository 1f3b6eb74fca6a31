"""GPU sharing: node labels, taints and GPU-operator configuration, all derived from the node pools.

The most reported GPU-operator failure is a node label that names a device-plugin ConfigMap key or a MIG config
that does not exist. Here one function (``sharing_config_name``) names the entry, and both the node group's label
and the operator's configuration are generated from it, so they cannot drift apart.
"""

from __future__ import annotations

from functools import partial

import yaml

from platform_config.models import Environment, NodePool, SharingMode
from platform_config.node_labels import (
    ACCELERATOR_LABEL,
    DEVICE_PLUGIN_CONFIG_LABEL,
    GPU_MODEL_LABEL,
    GPU_PRESENT_LABEL,
    GPU_RESOURCE,
    GPU_SHARING_LABEL,
    GPU_TAINT_EFFECT_KUBERNETES,
    GPU_TAINT_KEY,
    GPU_TAINT_VALUE,
    MIG_CONFIG_LABEL,
    POOL_LABEL,
)

AUTOSCALER_TEMPLATE_PREFIX = "k8s.io/cluster-autoscaler/node-template"


def sharing_config_name(pool_name: str) -> str:
    """The device-plugin ConfigMap key (time-slicing, exclusive) or MIG config name (MIG) of a pool: the pool's
    name."""
    return pool_name


def mig_resource(profile: str) -> str:
    """The extended resource a MIG slice is requested as under ``mig.strategy: mixed``."""
    return f"nvidia.com/mig-{profile}"


def node_labels(pool_name: str, pool: NodePool) -> dict[str, str]:
    """The Kubernetes labels of a pool's nodes: our pool label, and on GPU pools the sharing selection."""
    labels = {POOL_LABEL: pool_name}
    if pool.gpu is None:
        return labels
    sharing_label = MIG_CONFIG_LABEL if pool.gpu.sharing.mode is SharingMode.MIG else DEVICE_PLUGIN_CONFIG_LABEL
    labels |= {
        GPU_PRESENT_LABEL: "true",
        GPU_MODEL_LABEL: pool.gpu.model,
        GPU_SHARING_LABEL: pool.gpu.sharing.mode.value,
        ACCELERATOR_LABEL: f"nvidia-{pool.gpu.model.lower()}",
        sharing_label: sharing_config_name(pool_name),
    }
    return labels


def node_resources(pool: NodePool) -> dict[str, int]:
    """Schedulable GPU resources one node of the pool advertises once the operator has configured it."""
    if pool.gpu is None:
        return {}
    gpus = pool.instance.gpus
    sharing = pool.gpu.sharing
    if sharing.mode is SharingMode.TIME_SLICING:
        return {GPU_RESOURCE: gpus * sharing.replicas}
    if sharing.mode is SharingMode.EXCLUSIVE:
        return {GPU_RESOURCE: gpus}
    return {mig_resource(profile): gpus * count for profile, count in sorted(sharing.layout.items())}


def autoscaler_node_template_tags(pool_name: str, pool: NodePool) -> dict[str, str]:
    """ASG tags that let the Cluster Autoscaler scale the pool up from zero nodes: without them it cannot know
    that an empty group would offer GPUs, carry our labels, or need the GPU toleration."""
    tags = {f"{AUTOSCALER_TEMPLATE_PREFIX}/label/{key}": value for key, value in node_labels(pool_name, pool).items()}
    if pool.gpu is not None:
        tags[f"{AUTOSCALER_TEMPLATE_PREFIX}/taint/{GPU_TAINT_KEY}"] = f"{GPU_TAINT_VALUE}:{GPU_TAINT_EFFECT_KUBERNETES}"
    resources = dict(node_resources(pool))
    if pool.gpu is not None and pool.gpu.sharing.mode is SharingMode.MIG:
        # Every GPU of a MIG node is partitioned, so the device plugin advertises no whole nvidia.com/gpu. Without
        # an explicit 0 the autoscaler assumes the instance type's GPUs and scales this pool up for whole-GPU pods.
        resources[GPU_RESOURCE] = 0
    for resource, count in resources.items():
        tags[f"{AUTOSCALER_TEMPLATE_PREFIX}/resources/{resource}"] = str(count)
    return tags


def device_plugin_config(environment: Environment) -> dict[str, dict]:
    """The device-plugin ConfigMap data, one entry per pool that selects it by label, keyed like that label: a
    time-slicing entry per time-slicing pool, and an entry without sharing per exclusive pool (whole GPUs, so a
    container may ask for several)."""
    entries = {}
    for name, pool in environment.gpu_pools().items():
        if pool.gpu.sharing.mode is SharingMode.EXCLUSIVE:
            entries[sharing_config_name(name)] = {"version": "v1"}
        if pool.gpu.sharing.mode is SharingMode.TIME_SLICING:
            entries[sharing_config_name(name)] = {
                "version": "v1",
                "sharing": {"timeSlicing": {
                    "renameByDefault": False,
                    "failRequestsGreaterThanOne": True,
                    "resources": [{"name": GPU_RESOURCE, "replicas": pool.gpu.sharing.replicas}],
                }},
            }
    return entries


#: The MIG config the operator applies to GPU nodes without a MIG label (time-slicing and exclusive pools); it must
#: exist in a custom configuration.
MIG_DISABLED_CONFIG = "all-disabled"


def mig_parted_config(environment: Environment) -> dict:
    """The MIG manager configuration: one named config per MIG pool, applied to all its GPUs, plus
    ``all-disabled`` for every other GPU node."""
    configs: dict[str, list] = {MIG_DISABLED_CONFIG: [{"devices": "all", "mig-enabled": False}]}
    for name, pool in environment.gpu_pools().items():
        if pool.gpu.sharing.mode is SharingMode.MIG:
            configs[sharing_config_name(name)] = [{
                "devices": "all",
                "mig-enabled": True,
                "mig-devices": dict(sorted(pool.gpu.sharing.layout.items())),
            }]
    return {"version": "v1", "mig-configs": configs}


#: Names of the ConfigMaps the GPU operator chart creates from the generated configuration.
DEVICE_PLUGIN_CONFIGMAP = "device-plugin-sharing"
MIG_CONFIGMAP = "mig-parted-layouts"


def gpu_operator_values(environment: Environment, *, prometheus_release: str) -> dict:
    """The GPU operator values computed from the pools: the device-plugin ConfigMap (one key per time-slicing or
    exclusive pool, the key its nodes' label names), the MIG layouts (one named config per MIG pool), and the label
    that lets kube-prometheus-stack pick up the DCGM exporter's ServiceMonitor."""
    dump = partial(yaml.safe_dump, sort_keys=True, default_flow_style=False)
    return {
        "devicePlugin": {"config": {
            "create": True, "name": DEVICE_PLUGIN_CONFIGMAP,
            # Nodes without the label (CPU and MIG nodes) keep the plugin's built-in behaviour.
            "default": "",
            "data": {key: dump(entry) for key, entry in device_plugin_config(environment).items()},
        }},
        "migManager": {"config": {
            "create": True, "name": MIG_CONFIGMAP, "default": MIG_DISABLED_CONFIG,
            "data": {"config.yaml": dump(mig_parted_config(environment))},
        }},
        "dcgmExporter": {"serviceMonitor": {"additionalLabels": {"release": prometheus_release}}},
    }
