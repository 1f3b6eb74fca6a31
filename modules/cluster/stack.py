"""``<env>-cluster``: the EKS cluster, its managed add-ons and the node groups."""

from __future__ import annotations

from cdktf import TerraformOutput
from constructs import Construct

from modules.cluster.addons import NETWORKING_ADDONS, WORKLOAD_ADDONS, ManagedAddons
from modules.cluster.eks_cluster import Cluster
from modules.cluster.github_runner import GithubActionsRunner
from modules.cluster.node_groups import ManagedNodeGroup
from modules.common.iam import ServiceRole
from modules.common.layer_stack import LayerStack
from modules.network.vpc import Network
from platform_config.images import pull_through_rules
from platform_config.models import Environment

#: Node instance role policies: join the cluster, pull images, and be reachable through SSM instead of SSH.
#: The VPC CNI uses the node role (it must assign addresses before any pod credential path exists).
NODE_ROLE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly", "AmazonEKS_CNI_Policy",
                      "AmazonSSMManagedInstanceCore")
#: What the kubelet needs beyond pulling when an image comes through a pull-through cache rule: on the first pull
#: of an image ECR creates its repository under the rule's prefix and imports the image from upstream, both on the
#: puller's permissions (https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-iam.html).
PULL_THROUGH_ACTIONS = ("ecr:BatchImportUpstreamImage", "ecr:CreateRepository")


def pull_through_statements(*, account_id: str, region: str) -> list[dict]:
    """The nodes may fill the account's pull-through cache, and only under the cache prefixes (never create or
    import into the repositories of the platform's own images)."""
    return [{"Sid": "FillThePullThroughCache", "Effect": "Allow", "Action": list(PULL_THROUGH_ACTIONS),
             "Resource": [f"arn:aws:ecr:{region}:{account_id}:repository/{rule.prefix}/*"
                          for rule in pull_through_rules().values()]}]


class ClusterStack(LayerStack):
    """Exposes ``cluster``, ``node_groups`` by pool and ``node_role`` (the nodes' instance role)."""

    def __init__(self, scope: Construct, *, environment: Environment, network: Network,
                 autoscaling_role_arn: str, github_connection_arn: str | None = None) -> None:
        """``github_connection_arn``: the account's GitHub connection (from the delivery layer); with it, the layer
        also holds the in-VPC GitHub Actions runners that the in-cluster layers' jobs run on (default none)."""
        super().__init__(scope, environment=environment, layer="cluster")
        env = environment
        subnet_of_zone = dict(zip(env.availability_zones, (s.id for s in network.private_subnets), strict=True))
        self.cluster = Cluster(self, "cluster", environment=env, vpc_id=network.vpc.id,
                               vpc_cidr=str(env.network.vpc_cidr), subnet_ids=list(subnet_of_zone.values()),
                               autoscaling_role_arn=autoscaling_role_arn)
        node_role = ServiceRole(self, "node-role", name=f"{env.cluster_name}-nodes", service="ec2.amazonaws.com",
                                managed_policies=NODE_ROLE_POLICIES,
                                inline_policy=pull_through_statements(account_id=env.account_id, region=env.region))
        self.node_role = node_role
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
        # CoreDNS and the CSI controllers run on CPU nodes: waiting for GPU pools as well would fail the whole
        # layer whenever GPU capacity or quota is missing.
        ManagedAddons(self, "workload-addons", cluster_name=self.cluster.eks.name, addons=WORKLOAD_ADDONS,
                      volume_key_arn=self.cluster.key.arn,
                      depends_on=[g.node_group for name, g in self.node_groups.items()
                                  if not env.node_pools[name].is_gpu])
        self.runner = None
        if github_connection_arn is not None and env.delivery is not None:
            self.runner = GithubActionsRunner(
                self, "github-runner", name=f"{env.cluster_name}-github-runner",
                github_repository=env.delivery.github_repository, connection_arn=github_connection_arn,
                vpc_id=network.vpc.id, subnet_ids=[s.id for s in network.private_subnets],
                cluster_security_group_id=self.cluster.eks.vpc_config.cluster_security_group_id,
                key_arn=self.cluster.key.arn, log_retention_days=env.cluster.log_retention_days,
                account_id=env.account_id, region=env.region)
            TerraformOutput(self, "github_runner_project", value=self.runner.project.name)
        TerraformOutput(self, "cluster_name", value=self.cluster.eks.name)
        TerraformOutput(self, "cluster_endpoint", value=self.cluster.eks.endpoint)
        TerraformOutput(self, "oidc_provider_arn", value=self.cluster.oidc_provider.arn)
