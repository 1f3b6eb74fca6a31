"""One managed node group: its launch template, the node group, and the autoscaler's scale-from-zero tags."""

from __future__ import annotations

import re
from collections.abc import Sequence

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.autoscaling_group_tag import AutoscalingGroupTagA, AutoscalingGroupTagTag
from cdktf_cdktf_provider_aws.eks_node_group import (
    EksNodeGroup,
    EksNodeGroupLaunchTemplate,
    EksNodeGroupNodeRepairConfig,
    EksNodeGroupScalingConfig,
    EksNodeGroupTaint,
    EksNodeGroupUpdateConfig,
)
from cdktf_cdktf_provider_aws.launch_template import (
    LaunchTemplate,
    LaunchTemplateBlockDeviceMappings,
    LaunchTemplateBlockDeviceMappingsEbs,
    LaunchTemplateMetadataOptions,
    LaunchTemplateMonitoring,
    LaunchTemplateTagSpecifications,
)
from constructs import Construct

from platform_config import gpu_sharing, node_labels
from platform_config.models import NodePool

#: EKS-optimized Amazon Linux 2023 AMIs; the NVIDIA variant ships the driver and container toolkit, so the GPU
#: operator runs with its driver and toolkit off.
CPU_AMI_TYPE = "AL2023_x86_64_STANDARD"
GPU_AMI_TYPE = "AL2023_x86_64_NVIDIA"
ROOT_DEVICE = "/dev/xvda"


class ManagedNodeGroup(Construct):
    """A node pool of the environment as an EKS managed node group.

    Inputs (keyword-only):
      cluster_name: the EKS cluster (a reference, so the group waits for the cluster).
      pool_name, pool: the pool's name (also the node group name and its ``mlops-platform/pool`` label) and
        its validated settings.
      subnet_ids: the private subnets of the pool's AZs.
      node_role_arn: the nodes' instance role.
      security_group_ids: attached to every node through the launch template.
      volume_key_arn: the customer-managed key that encrypts root volumes.
      depends_on: what must exist before nodes launch (networking add-ons, access; default none).
    Every group: IMDSv2 only with hop limit 1 (pods cannot reach the node's credentials), an encrypted gp3 root
    volume, no SSH key. GPU groups: the NVIDIA AMI, the GPU labels and the ``nvidia.com/gpu`` NO_SCHEDULE taint,
    node auto-repair, and the Cluster Autoscaler node-template tags on their Auto Scaling group.
    Exposes ``node_group`` and ``launch_template``.
    """

    def __init__(self, scope: Construct, id: str, *, cluster_name: str, pool_name: str, pool: NodePool,
                 subnet_ids: Sequence[str], node_role_arn: str, security_group_ids: Sequence[str],
                 volume_key_arn: str, depends_on: Sequence = ()) -> None:
        super().__init__(scope, id)
        self.launch_template = LaunchTemplate(
            self, "launch-template", name=f"{cluster_name}-{pool_name}",
            description=f"Nodes of pool {pool_name}", update_default_version=True,
            vpc_security_group_ids=list(security_group_ids),
            metadata_options=LaunchTemplateMetadataOptions(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1,
                instance_metadata_tags="disabled"),
            block_device_mappings=[LaunchTemplateBlockDeviceMappings(
                device_name=ROOT_DEVICE,
                ebs=LaunchTemplateBlockDeviceMappingsEbs(
                    volume_size=pool.disk_size_gib, volume_type="gp3", encrypted="true", kms_key_id=volume_key_arn,
                    delete_on_termination="true"))],
            monitoring=LaunchTemplateMonitoring(enabled=True),
            tag_specifications=[LaunchTemplateTagSpecifications(
                resource_type=kind, tags={"Name": f"{cluster_name}-{pool_name}", node_labels.POOL_LABEL: pool_name})
                for kind in ("instance", "volume")])

        taints = []
        if pool.is_gpu:
            taints = [EksNodeGroupTaint(key=node_labels.GPU_TAINT_KEY, value=node_labels.GPU_TAINT_VALUE,
                                        effect=node_labels.GPU_TAINT_EFFECT)]
        self.node_group = EksNodeGroup(
            self, "node-group", cluster_name=cluster_name, node_group_name=pool_name, node_role_arn=node_role_arn,
            subnet_ids=list(subnet_ids), instance_types=list(pool.instance_types),
            ami_type=GPU_AMI_TYPE if pool.is_gpu else CPU_AMI_TYPE, capacity_type=pool.capacity_type.value,
            scaling_config=EksNodeGroupScalingConfig(min_size=pool.min_size, desired_size=pool.desired_size,
                                                     max_size=pool.max_size),
            update_config=EksNodeGroupUpdateConfig(max_unavailable=1),
            labels=gpu_sharing.node_labels(pool_name, pool), taint=taints or None,
            launch_template=EksNodeGroupLaunchTemplate(id=self.launch_template.id,
                                                       version=str(self.launch_template.latest_version)),
            node_repair_config=EksNodeGroupNodeRepairConfig(enabled=True) if pool.is_gpu else None,
            # The Cluster Autoscaler owns the desired size once the group exists.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["scaling_config[0].desired_size"]),
            depends_on=list(depends_on))

        asg_name = self.node_group.resources.get(0).autoscaling_groups.get(0).name
        for key, value in gpu_sharing.autoscaler_node_template_tags(pool_name, pool).items():
            AutoscalingGroupTagA(self, f"autoscaler-{_id_part(key)}", autoscaling_group_name=asg_name,
                                 tag=AutoscalingGroupTagTag(key=key, value=value, propagate_at_launch=False))


def _id_part(tag_key: str) -> str:
    """A construct id from an autoscaler tag key: the part after the node-template prefix, made id-safe."""
    suffix = tag_key.removeprefix(gpu_sharing.AUTOSCALER_TEMPLATE_PREFIX + "/")
    return re.sub(r"[^A-Za-z0-9-]+", "-", suffix).strip("-")
