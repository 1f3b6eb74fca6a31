"""``<env>-data``: the buckets, EFS, the MLflow database, the secrets and the workload identities."""

from __future__ import annotations

from cdktf import TerraformOutput
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from constructs import Construct

from modules.cluster.eks_cluster import Cluster
from modules.common.kms import EncryptionKey
from modules.common.layer_stack import LayerStack
from modules.common.workload_identity import WorkloadIdentities
from modules.data.buckets import SecureBucket
from modules.data.database import PostgresDatabase
from modules.data.efs import SharedFileSystem
from modules.data.secret_readers import NamespaceSecretReaders
from modules.data.secrets import PlatformSecrets
from modules.data.wandb_server import WandbServerData
from modules.network.vpc import Network
from platform_config import wandb_server
from platform_config.data_layer import (
    BUCKET_PURPOSES,
    WORKLOAD_LOG_GROUPS,
    bucket_name,
    platform_secrets,
    workload_identities,
)
from platform_config.external_secrets import catalogue_secrets_by_namespace
from platform_config.models import Environment


class DataStack(LayerStack):
    """Everything that holds data, protected per the environment's ``protection`` settings, and the
    least-privilege identities of the workloads that use it."""

    def __init__(self, scope: Construct, *, environment: Environment, network: Network, cluster: Cluster,
                 node_role_arn: str) -> None:
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
            client_security_group_id=nodes_sg, client_role_arns=[node_role_arn], backups=env.data.efs_backups,
            prevent_destroy=protect)
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
        readers = {namespace: [self.secrets.secrets[key].arn for key in keys]
                   for namespace, keys in catalogue_secrets_by_namespace().items()}
        # The MLflow database's master secret (RDS keeps it) is read where MLflow runs.
        readers.setdefault(workload_identities()["mlflow"].namespace, []).append(self.database.master_secret_arn)
        if self.wandb_server:
            readers.setdefault(wandb_server.NAMESPACE, []).extend(self.wandb_server.secret_arns)
        self.secret_readers = NamespaceSecretReaders(
            self, "secret-readers", cluster_name=name, oidc_provider_arn=cluster.oidc_provider.arn,
            oidc_issuer_url=cluster.eks.identity.get(0).oidc.get(0).issuer, secret_arns=readers,
            data_key_arn=self.key.arn, region=env.region)
        self.identities = WorkloadIdentities(
            self, "workload-identities", cluster_name=cluster.eks.name, identities=workload_identities(),
            bucket_arns={purpose: bucket.arn for purpose, bucket in self.buckets.items()},
            secret_arns={key: secret.arn for key, secret in self.secrets.secrets.items()},
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
