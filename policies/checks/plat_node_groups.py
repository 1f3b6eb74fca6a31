"""EKS managed node groups: GPU pools are tainted, labelled for sharing and made of GPU instances; every group
launches from our launch template and has no SSH access."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories
from plat_common import (
    GPU_TAINT_EFFECT,
    GPU_TAINT_KEY,
    NVIDIA_GPU_INSTANCE_FAMILIES,
    SHARING_LABELS,
    NotApplicable,
    PlatformCheck,
    block,
    blocks,
    instance_family,
    is_gpu_node_group,
    is_reference,
    is_set,
    mapping,
    scalar,
    scalars,
)

NODE_GROUP = ["aws_eks_node_group"]


class GpuNodeGroupTainted(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_1", name="GPU node groups carry the nvidia.com/gpu NO_SCHEDULE taint",
            why="without the taint any pod lands on GPU nodes and holds capacity that costs tens of dollars an hour",
            resources=NODE_GROUP, categories=[CheckCategories.KUBERNETES])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        if not is_gpu_node_group(conf):
            raise NotApplicable
        taints = [(scalar(t, "key"), scalar(t, "effect")) for t in blocks(conf, "taint")]
        if (GPU_TAINT_KEY, GPU_TAINT_EFFECT) not in taints:
            found = ", ".join(f"{k}:{e}" for k, e in taints) or "none"
            yield f"no taint {GPU_TAINT_KEY} with effect {GPU_TAINT_EFFECT} (taints: {found})"


class GpuNodeGroupSharingLabel(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_2", name="GPU node groups carry a GPU sharing label",
            why="the GPU operator configures time-slicing or MIG from this label; without it the node's GPUs are "
                "not shared as the pool intends",
            resources=NODE_GROUP, categories=[CheckCategories.KUBERNETES])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        if not is_gpu_node_group(conf):
            raise NotApplicable
        labels = mapping(conf, "labels")
        if labels is None:
            yield "labels are one expression: the sharing label cannot be verified"
        elif not any(is_set(labels.get(label)) for label in SHARING_LABELS):
            yield f"none of the labels {' / '.join(SHARING_LABELS)} is set"


class GpuNodeGroupInstanceTypes(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_3", name="GPU node groups use only NVIDIA GPU instance types",
            why="a GPU pool launched on a non-GPU type gets the GPU AMI, taint and labels but no GPU: pods wait "
                "forever and the autoscaler keeps adding useless nodes",
            resources=NODE_GROUP, categories=[CheckCategories.GENERAL_SECURITY])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        if not is_gpu_node_group(conf):
            raise NotApplicable
        types = scalars(conf, "instance_types")
        if not types:
            yield "instance_types is not set (EKS would default to t3.medium)"
        for instance_type in types:
            if not isinstance(instance_type, str) or is_reference(instance_type):
                yield f"instance type {instance_type!r} is not a literal type name"
            elif instance_family(instance_type) not in NVIDIA_GPU_INSTANCE_FAMILIES:
                yield f"{instance_type} is not an NVIDIA GPU instance type"


class NodeGroupUsesLaunchTemplate(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_4", name="Node groups launch from a launch template",
            why="only our launch template enforces IMDSv2 with hop limit 1, KMS-encrypted root volumes and no SSH "
                "key; EKS's default template does none of that",
            resources=NODE_GROUP, categories=[CheckCategories.GENERAL_SECURITY])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        template = block(conf, "launch_template")
        if template is None:
            yield "no launch_template block"
        elif not (is_set(template.get("id")) or is_set(template.get("name"))):
            yield "launch_template has neither id nor name"


class NodeGroupNoRemoteAccess(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_5", name="Node groups have no remote_access (SSH) block",
            why="remote_access opens SSH to the nodes (from anywhere when no source group is given); nodes are "
                "reached through SSM instead",
            resources=NODE_GROUP, categories=[CheckCategories.NETWORKING])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        if blocks(conf, "remote_access"):
            yield "remote_access block present"


GpuNodeGroupTainted()
GpuNodeGroupSharingLabel()
GpuNodeGroupInstanceTypes()
NodeGroupUsesLaunchTemplate()
NodeGroupNoRemoteAccess()
