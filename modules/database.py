"""The MLflow backend database: RDS PostgreSQL, private, encrypted, its master password kept by Secrets Manager."""

from __future__ import annotations

from collections.abc import Sequence

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.db_instance import DbInstance
from cdktf_cdktf_provider_aws.db_parameter_group import DbParameterGroup, DbParameterGroupParameter
from cdktf_cdktf_provider_aws.db_subnet_group import DbSubnetGroup
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from modules.iam import ServiceRole
from platform_config.models import Database

POSTGRES_PORT = 5432
DATABASE_NAME = "mlflow"
MASTER_USERNAME = "mlflow_admin"
#: Server settings: TLS only, DDL and slow statements (> 1 s) logged.
PARAMETERS = {"rds.force_ssl": "1", "log_statement": "ddl", "log_min_duration_statement": "1000"}


class PostgresDatabase(Construct):
    """An RDS PostgreSQL instance in private subnets.

    Inputs (keyword-only):
      identifier: the instance identifier (also the base of its group names).
      settings: version, size, multi-AZ and backups (``Database``).
      kms_key_arn: encrypts storage, Performance Insights and the master-password secret.
      vpc_id, subnet_ids: the private subnets.
      client_security_group_id: the only security group admitted on 5432 (the nodes').
      prevent_destroy: deletion protection, ``prevent_destroy`` and a final snapshot (default true).
    The master password is generated and rotated by RDS in Secrets Manager: it is never in code or state.
    Exposes ``instance`` and ``master_secret_arn``.
    """

    def __init__(self, scope: Construct, id: str, *, identifier: str, settings: Database, kms_key_arn: str,
                 vpc_id: str, subnet_ids: Sequence[str], client_security_group_id: str,
                 prevent_destroy: bool = True) -> None:
        super().__init__(scope, id)
        security_group = SecurityGroup(self, "security-group", name=f"{identifier}-db", vpc_id=vpc_id,
                                       description=f"PostgreSQL {identifier} from the cluster's nodes only",
                                       tags={"Name": f"{identifier}-db"})
        VpcSecurityGroupIngressRule(self, "postgres-from-nodes", security_group_id=security_group.id,
                                    ip_protocol="tcp", from_port=POSTGRES_PORT, to_port=POSTGRES_PORT,
                                    referenced_security_group_id=client_security_group_id,
                                    description="PostgreSQL from the cluster's nodes")
        subnets = DbSubnetGroup(self, "subnet-group", name=identifier, subnet_ids=list(subnet_ids),
                                description=f"Private subnets of {identifier}")
        family = f"postgres{settings.postgres_version}"
        parameters = DbParameterGroup(
            self, "parameters", name=f"{identifier}-{family}", family=family,
            description=f"{identifier}: TLS only, DDL and slow-query logging",
            parameter=[DbParameterGroupParameter(name=k, value=v) for k, v in PARAMETERS.items()])
        monitoring = ServiceRole(self, "monitoring-role", name=f"{identifier}-rds-monitoring",
                                 service="monitoring.rds.amazonaws.com",
                                 managed_policies=["service-role/AmazonRDSEnhancedMonitoringRole"])
        self.instance = DbInstance(
            self, "instance", identifier=identifier, engine="postgres", engine_version=settings.postgres_version,
            instance_class=settings.instance_class, allocated_storage=settings.allocated_storage_gib,
            max_allocated_storage=settings.max_allocated_storage_gib, storage_type="gp3",
            storage_encrypted=True, kms_key_id=kms_key_arn, db_name=DATABASE_NAME, username=MASTER_USERNAME,
            manage_master_user_password=True, master_user_secret_kms_key_id=kms_key_arn,
            db_subnet_group_name=subnets.name, vpc_security_group_ids=[security_group.id],
            parameter_group_name=parameters.name, publicly_accessible=False, multi_az=settings.multi_az,
            backup_retention_period=settings.backup_retention_days, backup_window="03:00-04:00",
            maintenance_window="sun:04:30-sun:05:30", copy_tags_to_snapshot=True, auto_minor_version_upgrade=True,
            iam_database_authentication_enabled=True, performance_insights_enabled=True,
            performance_insights_kms_key_id=kms_key_arn, performance_insights_retention_period=7,
            monitoring_interval=60, monitoring_role_arn=monitoring.arn,
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
            deletion_protection=prevent_destroy, skip_final_snapshot=not prevent_destroy,
            final_snapshot_identifier=f"{identifier}-final" if prevent_destroy else None,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=prevent_destroy))
        self.master_secret_arn = self.instance.master_user_secret.get(0).secret_arn
