"""The layers of one environment, each its own Terraform stack with its own state.

``<env>-network`` holds the VPC; ``<env>-cluster`` the EKS cluster, its add-ons and node groups. A layer reads
what it needs from an earlier layer through cross-stack references (cdktf turns them into outputs and
``terraform_remote_state``), and never configures a provider from a resource of its own layer.
"""

from __future__ import annotations

from cdktf import S3Backend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct

from modules.addons import NETWORKING_ADDONS, WORKLOAD_ADDONS, ManagedAddons
from modules.cluster import Cluster
from modules.iam import ServiceRole
from modules.network import Network
from modules.node_group import ManagedNodeGroup
from platform_config.models import Environment

#: Node instance role policies: join the cluster, pull images, and be reachable through SSM instead of SSH.
#: The VPC CNI uses the node role (it must assign addresses before any pod credential path exists).
NODE_ROLE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly", "AmazonEKS_CNI_Policy",
                      "AmazonSSMManagedInstanceCore")


class LayerStack(TerraformStack):
    """A stack of one environment's layer: the AWS provider for that account and region, and an S3 backend
    with native locking whose key is ``<key_prefix>/<env>/<layer>.tfstate``."""

    def __init__(self, scope: Construct, *, environment: Environment, layer: str) -> None:
        super().__init__(scope, f"{environment.name}-{layer}")
        self.environment = environment
        backend = environment.state_backend
        S3Backend(self, bucket=backend.bucket, key=f"{backend.key_prefix}/{environment.name}/{layer}.tfstate",
                  region=backend.region, encrypt=True)
        if backend.use_lockfile:
            # cdktf 0.21's S3Backend predates use_lockfile (Terraform >= 1.10).
            self.add_override("terraform.backend.s3.use_lockfile", True)
        AwsProvider(self, "aws", region=environment.region, allowed_account_ids=[environment.account_id],
                    default_tags=[AwsProviderDefaultTags(tags={**environment.tags, "Layer": layer})])


class NetworkStack(LayerStack):
    def __init__(self, scope: Construct, *, environment: Environment) -> None:
        super().__init__(scope, environment=environment, layer="network")
        self.network = Network(self, "network", environment=environment)
        TerraformOutput(self, "vpc_id", value=self.network.vpc.id)
        TerraformOutput(self, "private_subnet_ids", value=[s.id for s in self.network.private_subnets])


class ClusterStack(LayerStack):
    def __init__(self, scope: Construct, *, environment: Environment, network: Network) -> None:
        super().__init__(scope, environment=environment, layer="cluster")
        env = environment
        subnet_of_zone = dict(zip(env.availability_zones, (s.id for s in network.private_subnets), strict=True))
        self.cluster = Cluster(self, "cluster", environment=env, vpc_id=network.vpc.id,
                               vpc_cidr=str(env.network.vpc_cidr), subnet_ids=list(subnet_of_zone.values()))
        node_role = ServiceRole(self, "node-role", name=f"{env.cluster_name}-nodes", service="ec2.amazonaws.com",
                                managed_policies=NODE_ROLE_POLICIES)
        networking = ManagedAddons(self, "networking-addons", cluster_name=self.cluster.eks.name,
                                   addons=NETWORKING_ADDONS)
        self.node_groups = {
            name: ManagedNodeGroup(
                self, f"pool-{name}", cluster_name=self.cluster.eks.name, pool_name=name, pool=pool,
                subnet_ids=[subnet_of_zone[zone] for zone in env.pool_zones(name)], node_role_arn=node_role.arn,
                security_group_ids=[self.cluster.node_security_group.id], volume_key_arn=self.cluster.key.arn,
                depends_on=[*networking.addons.values(), node_role.role])
            for name, pool in env.node_pools.items()
        }
        ManagedAddons(self, "workload-addons", cluster_name=self.cluster.eks.name, addons=WORKLOAD_ADDONS,
                      volume_key_arn=self.cluster.key.arn,
                      depends_on=[g.node_group for g in self.node_groups.values()])
        TerraformOutput(self, "cluster_name", value=self.cluster.eks.name)
        TerraformOutput(self, "cluster_endpoint", value=self.cluster.eks.endpoint)
        TerraformOutput(self, "oidc_provider_arn", value=self.cluster.oidc_provider.arn)
