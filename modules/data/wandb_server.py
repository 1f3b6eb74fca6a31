"""The self-managed W&B server's AWS side: RDS MySQL, the files bucket, the license secret and a Pod Identity role.

What runs in the cluster (the ``WeightsAndBiases`` resource and its External Secrets) is
``platform_config/wandb_server.py``; it reads the names this construct creates through ``WandbServerData.refs()``.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.eks_pod_identity_association import EksPodIdentityAssociation
from cdktf_cdktf_provider_aws.s3_bucket_cors_configuration import (
    S3BucketCorsConfiguration,
    S3BucketCorsConfigurationCorsRule,
)
from cdktf_cdktf_provider_aws.secretsmanager_secret import SecretsmanagerSecret
from constructs import Construct

from modules.common.workload_identity import PodIdentityRole, _bucket_statements
from modules.data.buckets import SecureBucket
from modules.data.database import RdsDatabase
from platform_config.data_layer import BucketAccess, bucket_name, secret_name
from platform_config.models import Environment
from platform_config.wandb_server import (
    BUCKET_PURPOSE,
    DATABASE_NAME,
    LICENSE_SECRET_KEY,
    MASTER_USERNAME,
    MYSQL_PORT,
    NAMESPACE,
    WandbServerRefs,
    service_accounts,
)
from platform_config.wandb_settings import WandbServer

#: Server settings. TLS only (CKV2_AWS_69 reads the same parameter); the rest is what W&B's own AWS module sets
#: (wandb/terraform-aws-wandb modules/database/main.tf, for Aurora MySQL 3): performance schema, slow-query log,
#: prepared-statement and sort-buffer limits, a 60 s statement ceiling and room for online schema changes.
#: Static parameters wait for a reboot (a new instance starts with them).
PARAMETERS = {
    "require_secure_transport": ("1", "immediate"),
    "performance_schema": ("1", "pending-reboot"),
    "slow_query_log": ("1", "immediate"),
    "long_query_time": ("4", "immediate"),
    "max_prepared_stmt_count": ("1048576", "pending-reboot"),
    "max_execution_time": ("60000", "immediate"),
    "sort_buffer_size": ("262144", "immediate"),
    "innodb_lru_scan_depth": ("128", "immediate"),
    "innodb_online_alter_log_max_size": ("268435456", "immediate"),
}
#: Row-based binary logging, as W&B's module sets; 8.4 already defaults to it (and deprecates the variable).
PARAMETERS_8_0 = {"binlog_format": ("ROW", "immediate")}
LOG_EXPORTS = ["error", "slowquery"]
#: Browsers upload and download run files straight from S3 with presigned URLs (W&B's module allows the same
#: methods; here only the server's own origin).
CORS_METHODS = ["GET", "HEAD", "PUT"]


class WandbServerData(Construct):
    """What the self-managed W&B server keeps in AWS.

    Inputs (keyword-only):
      environment: names, account, region, bucket and secret settings; ``high_availability`` makes the
        database multi-AZ.
      server: the server's settings (``workloads.wandb.server``): host (CORS origin) and database.
      vpc_id, subnet_ids, client_security_group_id: where the database lives and who may reach it (the nodes).
      kms_key_arn: the data key (database, bucket, license secret).
      logs_bucket_id: the bucket receiving the files bucket's server access logs.
      cluster_name: the EKS cluster of the Pod Identity associations.
      prevent_destroy: protect the database, bucket and secret from destroy (default true).
    Creates: RDS MySQL ``mlops-<env>-wandb`` (master password kept by RDS in Secrets Manager), the bucket
    ``mlops-<env>-wandb-<account>-<region>`` (``SecureBucket``, CORS for the server's origin), the secret
    ``mlops-<env>/wandb-license`` without a value, and one role, read-write on that bucket only and the data key
    only through S3, associated with every W&B service account that uses the bucket.
    Exposes ``database``, ``bucket``, ``license_secret``, ``role`` and ``refs()``.
    """

    def __init__(self, scope: Construct, id: str, *, environment: Environment, server: WandbServer, vpc_id: str,
                 subnet_ids: Sequence[str], client_security_group_id: str, kms_key_arn: str, logs_bucket_id: str,
                 cluster_name: str, prevent_destroy: bool = True) -> None:
        super().__init__(scope, id)
        env = environment
        self._kms_key_arn = kms_key_arn
        settings, version = server.database, server.database.mysql_version
        self.database = RdsDatabase(
            self, "database", identifier=f"{env.cluster_name}-wandb", engine="mysql", engine_version=version,
            family=f"mysql{version}", label="MySQL", port=MYSQL_PORT,
            parameters=dict(sorted({**PARAMETERS, **(PARAMETERS_8_0 if version == "8.0" else {})}.items())),
            parameters_description="TLS only, W&B server settings, slow-query logging", log_exports=LOG_EXPORTS,
            db_name=DATABASE_NAME, username=MASTER_USERNAME, instance_class=settings.instance_class,
            allocated_storage_gib=settings.allocated_storage_gib,
            max_allocated_storage_gib=settings.max_allocated_storage_gib, multi_az=env.high_availability,
            backup_retention_days=settings.backup_retention_days, kms_key_arn=kms_key_arn, vpc_id=vpc_id,
            subnet_ids=subnet_ids, client_security_group_id=client_security_group_id,
            prevent_destroy=prevent_destroy)
        self.bucket = SecureBucket(
            self, "bucket", name=bucket_name(env.name, BUCKET_PURPOSE, env.account_id, env.region),
            kms_key_arn=kms_key_arn, noncurrent_version_days=env.data.buckets.noncurrent_version_days,
            access_log_bucket=logs_bucket_id, prevent_destroy=prevent_destroy,
            force_destroy=env.protection.force_destroy_buckets)
        S3BucketCorsConfiguration(self, "bucket-cors", bucket=self.bucket.bucket.id, cors_rule=[
            S3BucketCorsConfigurationCorsRule(allowed_methods=CORS_METHODS, allowed_origins=[server.url],
                                              allowed_headers=["*"], expose_headers=["ETag"],
                                              max_age_seconds=3000)])
        self.license_secret = SecretsmanagerSecret(
            self, "license", name=secret_name(env.name, LICENSE_SECRET_KEY),
            description="Weights & Biases server license (issued by W&B)", kms_key_id=kms_key_arn,
            recovery_window_in_days=env.data.secret_recovery_window_days,
            tags={"mlops-platform/synced-to": NAMESPACE},
            lifecycle=TerraformResourceLifecycle(prevent_destroy=prevent_destroy))
        statements = [
            *_bucket_statements({BUCKET_PURPOSE: BucketAccess.READ_WRITE}, {BUCKET_PURPOSE: self.bucket.arn},
                                kms_key_arn, env.region),
            {"Sid": "ListItsMultipartUploads", "Effect": "Allow", "Action": ["s3:ListBucketMultipartUploads"],
             "Resource": [self.bucket.arn]},
        ]
        first, *others = service_accounts()
        self.role = PodIdentityRole(self, "identity", cluster_name=cluster_name, name="wandb-server",
                                    namespace=NAMESPACE, service_account=first, statements=statements)
        for account in others:
            EksPodIdentityAssociation(self, f"association-{account}", cluster_name=cluster_name,
                                      namespace=NAMESPACE, service_account=account, role_arn=self.role.arn)

    @property
    def secret_arns(self) -> tuple[str, ...]:
        """The secrets External Secrets reads for the server (add them to its role's platform secrets)."""
        return (self.database.master_secret_arn, self.license_secret.arn)

    def refs(self) -> WandbServerRefs:
        return WandbServerRefs(bucket_name=self.bucket.name, kms_key_arn=self._kms_key_arn,
                               database_host=self.database.instance.address,
                               database_secret_arn=self.database.master_secret_arn,
                               license_secret=self.license_secret.arn)
