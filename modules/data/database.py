"""RDS databases, private, encrypted, their master password kept by Secrets Manager: MLflow's PostgreSQL and,
through ``RdsDatabase``, the self-managed W&B server's MySQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.db_instance import DbInstance
from cdktf_cdktf_provider_aws.db_parameter_group import DbParameterGroup, DbParameterGroupParameter
from cdktf_cdktf_provider_aws.db_subnet_group import DbSubnetGroup
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from modules.common.iam import ServiceRole
from platform_config.models import Database

POSTGRES_PORT = 5432
DATABASE_NAME = "mlflow"
MASTER_USERNAME = "mlflow_admin"
#: Server settings: TLS only, DDL and slow statements (> 1 s) logged.
PARAMETERS = {"rds.force_ssl": "1", "log_statement": "ddl", "log_min_duration_statement": "1000"}


class RdsDatabase(Construct):
    """An RDS instance in private subnets, encrypted with one key, admitted only from one security group, its
    master password generated and rotated by RDS in Secrets Manager (never in code or state).

    Inputs (keyword-only):
      identifier: the instance identifier (also the base of its group names).
      engine, engine_version, family: e.g. ``postgres``, ``16``, ``postgres16`` or ``mysql``, ``8.4``, ``mysql8.4``.
      label, port: the engine's display name and port (the ingress rule is ``<engine>-from-nodes``).
      parameters: name -> value, or name -> (value, apply method) for static parameters.
      log_exports: CloudWatch log types.
      db_name, username: the initial database and master user.
      instance_class, allocated_storage_gib, max_allocated_storage_gib, multi_az, backup_retention_days: size.
      kms_key_arn: encrypts storage, Performance Insights and the master-password secret.
      vpc_id, subnet_ids, client_security_group_id: the private subnets and the only admitted security group.
      prevent_destroy: deletion protection, ``prevent_destroy`` and a final snapshot (default true).
    Exposes ``instance`` and ``master_secret_arn``.
    """

    def __init__(self, scope: Construct, id: str, *, identifier: str, engine: str, engine_version: str, family: str,
                 label: str, port: int, parameters: Mapping[str, str | tuple[str, str]], parameters_description: str,
                 log_exports: Sequence[str], db_name: str, username: str, instance_class: str,
                 allocated_storage_gib: int, max_allocated_storage_gib: int, multi_az: bool,
                 backup_retention_days: int, kms_key_arn: str, vpc_id: str, subnet_ids: Sequence[str],
                 client_security_group_id: str, prevent_destroy: bool = True) -> None:
        super().__init__(scope, id)
        security_group = SecurityGroup(self, "security-group", name=f"{identifier}-db", vpc_id=vpc_id,
                                       description=f"{label} {identifier} from the cluster's nodes only",
                                       tags={"Name": f"{identifier}-db"})
        VpcSecurityGroupIngressRule(self, f"{engine}-from-nodes", security_group_id=security_group.id,
                                    ip_protocol="tcp", from_port=port, to_port=port,
                                    referenced_security_group_id=client_security_group_id,
                                    description=f"{label} from the cluster's nodes")
        subnets = DbSubnetGroup(self, "subnet-group", name=identifier, subnet_ids=list(subnet_ids),
                                description=f"Private subnets of {identifier}")
        group = DbParameterGroup(
            self, "parameters", name=f"{identifier}-{family.replace('.', '')}", family=family,
            description=f"{identifier}: {parameters_description}",
            parameter=[DbParameterGroupParameter(name=name, value=value, apply_method=apply)
                       for name, (value, apply) in ((n, v if isinstance(v, tuple) else (v, None))
                                                    for n, v in parameters.items())])
        monitoring = ServiceRole(self, "monitoring-role", name=f"{identifier}-rds-monitoring",
                                 service="monitoring.rds.amazonaws.com",
                                 managed_policies=["service-role/AmazonRDSEnhancedMonitoringRole"])
        self.instance = DbInstance(
            self, "instance", identifier=identifier, engine=engine, engine_version=engine_version,
            instance_class=instance_class, allocated_storage=allocated_storage_gib,
            max_allocated_storage=max_allocated_storage_gib, storage_type="gp3",
            storage_encrypted=True, kms_key_id=kms_key_arn, db_name=db_name, username=username,
            manage_master_user_password=True, master_user_secret_kms_key_id=kms_key_arn,
            db_subnet_group_name=subnets.name, vpc_security_group_ids=[security_group.id],
            parameter_group_name=group.name, publicly_accessible=False, multi_az=multi_az,
            backup_retention_period=backup_retention_days, backup_window="03:00-04:00",
            maintenance_window="sun:04:30-sun:05:30", copy_tags_to_snapshot=True, auto_minor_version_upgrade=True,
            iam_database_authentication_enabled=True, performance_insights_enabled=True,
            performance_insights_kms_key_id=kms_key_arn, performance_insights_retention_period=7,
            monitoring_interval=60, monitoring_role_arn=monitoring.arn,
            enabled_cloudwatch_logs_exports=list(log_exports),
            deletion_protection=prevent_destroy, skip_final_snapshot=not prevent_destroy,
            final_snapshot_identifier=f"{identifier}-final" if prevent_destroy else None,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=prevent_destroy))
        self.master_secret_arn = self.instance.master_user_secret.get(0).secret_arn


class PostgresDatabase(RdsDatabase):
    """The MLflow database: ``RdsDatabase`` with PostgreSQL ``settings`` (``Database``), TLS forced, DDL and slow
    statements logged. Same construct ids as before the generalization: nothing is replaced."""

    def __init__(self, scope: Construct, id: str, *, identifier: str, settings: Database, kms_key_arn: str,
                 vpc_id: str, subnet_ids: Sequence[str], client_security_group_id: str,
                 prevent_destroy: bool = True) -> None:
        super().__init__(
            scope, id, identifier=identifier, engine="postgres", engine_version=settings.postgres_version,
            family=f"postgres{settings.postgres_version}", label="PostgreSQL", port=POSTGRES_PORT,
            parameters=PARAMETERS, parameters_description="TLS only, DDL and slow-query logging",
            log_exports=["postgresql", "upgrade"], db_name=DATABASE_NAME, username=MASTER_USERNAME,
            instance_class=settings.instance_class, allocated_storage_gib=settings.allocated_storage_gib,
            max_allocated_storage_gib=settings.max_allocated_storage_gib, multi_az=settings.multi_az,
            backup_retention_days=settings.backup_retention_days, kms_key_arn=kms_key_arn, vpc_id=vpc_id,
            subnet_ids=subnet_ids, client_security_group_id=client_security_group_id,
            prevent_destroy=prevent_destroy)
