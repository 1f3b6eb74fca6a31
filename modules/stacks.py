"""The layers of one environment, each its own Terraform stack with its own state.

``<env>-network`` holds the VPC; ``<env>-cluster`` the EKS cluster, its add-ons and node groups; ``<env>-data``
the buckets, EFS, the MLflow database, the secrets and the workload identities. A layer reads
what it needs from an earlier layer through cross-stack references (cdktf turns them into outputs and
``terraform_remote_state``), and never configures a provider from a resource of its own layer.
"""

from __future__ import annotations

from cdktf import S3Backend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct

from modules.addons import NETWORKING_ADDONS, WORKLOAD_ADDONS, ManagedAddons
from modules.buckets import SecureBucket
from modules.cluster import Cluster
from modules.database import PostgresDatabase
from modules.delivery import Delivery
from modules.efs import SharedFileSystem
from modules.iam import ServiceRole
from modules.kms import EncryptionKey
from modules.network import Network
from modules.node_group import ManagedNodeGroup
from modules.secrets import PlatformSecrets
from modules.wandb_server import WandbServerData
from modules.workload_identity import WorkloadIdentities
from platform_config.data_layer import (
    BUCKET_PURPOSES,
    WORKLOAD_LOG_GROUPS,
    bucket_name,
    platform_secrets,
    workload_identities,
)
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


class DataStack(LayerStack):
    """Everything that holds data, protected per the environment's ``protection`` settings, and the
    least-privilege identities of the workloads that use it."""

    def __init__(self, scope: Construct, *, environment: Environment, network: Network, cluster: Cluster) -> None:
        super().__init__(scope, environment=environment, layer="data")
        env = environment
        name = env.cluster_name
        protect = env.protection.prevent_destroy
        self.key = EncryptionKey(
            self, "data-key", alias=f"{name}-data", description=f"Buckets, EFS, database and secrets of {name}",
            account_id=env.account_id, region=env.region, deletion_window_days=env.cluster.kms_deletion_window_days,
            log_groups=True, s3_access_logs=True, prevent_destroy=protect)
        self.buckets = self._buckets(env)
        private_subnets = dict(zip(env.availability_zones, (s.id for s in network.private_subnets), strict=True))
        nodes_sg = cluster.node_security_group.id
        self.file_system = SharedFileSystem(
            self, "efs", name=name, kms_key_arn=self.key.arn, vpc_id=network.vpc.id, subnets_by_zone=private_subnets,
            client_security_group_id=nodes_sg, backups=env.data.efs_backups, prevent_destroy=protect)
        self.database = PostgresDatabase(
            self, "mlflow-database", identifier=f"{name}-mlflow", settings=env.data.database,
            kms_key_arn=self.key.arn, vpc_id=network.vpc.id, subnet_ids=list(private_subnets.values()),
            client_security_group_id=nodes_sg, prevent_destroy=protect)
        wandb = env.workloads.wandb
        self.wandb_server = WandbServerData(
            self, "wandb-server", environment=env, server=wandb.server, vpc_id=network.vpc.id,
            subnet_ids=list(private_subnets.values()), client_security_group_id=nodes_sg, kms_key_arn=self.key.arn,
            logs_bucket_id=self.buckets["logs"].bucket.id, cluster_name=cluster.eks.name,
            prevent_destroy=protect) if wandb.self_managed else None
        self.secrets = PlatformSecrets(
            self, "secrets", environment_name=env.name, secrets=platform_secrets(), kms_key_arn=self.key.arn,
            recovery_window_days=env.data.secret_recovery_window_days, prevent_destroy=protect)
        self.log_groups = {
            group: CloudwatchLogGroup(self, f"log-group-{group}", name=f"/aws/eks/{name}/{group}",
                                      retention_in_days=env.cluster.log_retention_days, kms_key_id=self.key.arn)
            for group in WORKLOAD_LOG_GROUPS
        }
        self.identities = WorkloadIdentities(
            self, "workload-identities", cluster_name=cluster.eks.name, identities=workload_identities(),
            bucket_arns={purpose: bucket.arn for purpose, bucket in self.buckets.items()},
            secret_arns={key: secret.arn for key, secret in self.secrets.secrets.items()},
            extra_platform_secret_arns=(self.database.master_secret_arn,
                                        *(self.wandb_server.secret_arns if self.wandb_server else ())),
            log_group_arns={group: log_group.arn for group, log_group in self.log_groups.items()},
            data_key_arn=self.key.arn, region=env.region)
        for purpose, bucket in self.buckets.items():
            TerraformOutput(self, f"bucket_{purpose.replace('-', '_')}", value=bucket.name)
        TerraformOutput(self, "efs_file_system_id", value=self.file_system.file_system.id)
        TerraformOutput(self, "mlflow_database_endpoint", value=self.database.instance.endpoint)
        if self.wandb_server:
            TerraformOutput(self, "wandb_database_endpoint", value=self.wandb_server.database.instance.endpoint)
            TerraformOutput(self, "bucket_wandb", value=self.wandb_server.bucket.name)

    def _buckets(self, env: Environment) -> dict[str, SecureBucket]:
        settings = env.data.buckets
        names = {p: bucket_name(env.name, p, env.account_id, env.region) for p in BUCKET_PURPOSES}
        common = {"kms_key_arn": self.key.arn, "noncurrent_version_days": settings.noncurrent_version_days,
                  "prevent_destroy": env.protection.prevent_destroy,
                  "force_destroy": env.protection.force_destroy_buckets}
        logs_arn = f"arn:aws:s3:::{names['logs']}"
        log_delivery = {
            "Sid": "S3LogDeliveryWritesAccessLogs", "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
            "Resource": f"{logs_arn}/*",
            "Condition": {"StringEquals": {"aws:SourceAccount": env.account_id}},
        }
        logs = SecureBucket(self, "bucket-logs", name=names["logs"], expire_current_days=settings.access_log_days,
                            extra_policy_statements=[log_delivery], **common)
        buckets = {"logs": logs}
        for purpose in ("raw-data", "artifacts", "model-registry"):
            buckets[purpose] = SecureBucket(
                self, f"bucket-{purpose}", name=names[purpose], access_log_bucket=logs.bucket.id,
                intelligent_tiering=purpose == "raw-data",
                object_lock_days=settings.model_registry_object_lock_days if purpose == "model-registry" else None,
                **common)
        return buckets


class DeliveryStack(LayerStack):
    """Delivery into the environment's account: ECR repositories for the platform's images and the identities of
    the GitHub Actions workflows. It reads no other layer and is applied first (by hand, once, to bootstrap)."""

    def __init__(self, scope: Construct, *, environment: Environment) -> None:
        super().__init__(scope, environment=environment, layer="delivery")
        env, settings, backend = environment, environment.delivery, environment.state_backend
        self.delivery = Delivery(
            self, "delivery", github_repository=settings.github_repository, account_id=env.account_id,
            region=env.region, state_bucket=backend.bucket, state_key_prefix=f"{backend.key_prefix}/{env.name}",
            deploy_environments=settings.deploy_environments or [env.name],
            untagged_expiry_days=settings.untagged_image_expiry_days, tagged_images_kept=settings.tagged_images_kept,
            oidc_provider_arn=settings.github_oidc_provider_arn,
            kms_deletion_window_days=env.cluster.kms_deletion_window_days,
            prevent_destroy=env.protection.prevent_destroy)
        TerraformOutput(self, "repository_urls",
                        value={name: r.repository_url for name, r in self.delivery.repositories.items()})
        TerraformOutput(self, "plan_role_arn", value=self.delivery.plan_role.arn)
        TerraformOutput(self, "deploy_role_arns",
                        value={name: role.arn for name, role in self.delivery.deploy_roles.items()})
        TerraformOutput(self, "image_push_role_arn", value=self.delivery.image_push_role.arn)
