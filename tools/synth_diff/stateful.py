"""Which resources hold state that a destroy loses, and which attribute changes make Terraform replace them.

One place for both lists: the diff reads them, tests and reviewers can too. Extend them when the platform starts
using a new kind of stateful resource.
"""

from __future__ import annotations

#: Resource type -> what destroying it loses.
STATEFUL_TYPES: dict[str, str] = {
    "aws_s3_bucket": "the bucket and every object in it",
    "aws_efs_file_system": "the file system and every file on it",
    "aws_ebs_volume": "the volume's data",
    "aws_fsx_lustre_file_system": "the file system's data",
    "aws_fsx_openzfs_file_system": "the file system's data",
    "aws_fsx_ontap_file_system": "the file system's data",
    "aws_db_instance": "the database (only a final snapshot, if configured, survives)",
    "aws_rds_cluster": "the database cluster (only a final snapshot, if configured, survives)",
    "aws_docdb_cluster": "the database cluster",
    "aws_neptune_cluster": "the graph database",
    "aws_redshift_cluster": "the warehouse's data",
    "aws_dynamodb_table": "every item in the table",
    "aws_elasticache_replication_group": "the cache's data",
    "aws_elasticache_cluster": "the cache's data",
    "aws_opensearch_domain": "the search indices",
    "aws_msk_cluster": "the topics and their messages",
    "aws_kinesis_stream": "the records in the stream",
    "aws_sqs_queue": "the messages in the queue",
    "aws_kms_key": "the key: everything encrypted with it becomes unreadable once the deletion window ends",
    "aws_secretsmanager_secret": "the secret and its versions (after the recovery window)",
    "aws_ecr_repository": "the repository and every image in it",
    "aws_eks_cluster": "the cluster: every workload, its etcd data and what the cluster provisioned",
    "aws_cloudwatch_log_group": "the log group and its logs",
    "aws_backup_vault": "the vault's recovery points",
    "aws_cognito_user_pool": "the users of the pool",
    "aws_acmpca_certificate_authority": "the certificate authority and its private key",
    "aws_eip": "the public IP address (allow-lists elsewhere may name it)",
    "tls_private_key": "the private key: certificates signed with it (e.g. the mesh trust anchor) stop validating",
    "kubernetes_persistent_volume_claim_v1": "the volume bound to the claim",
    "kubernetes_persistent_volume_claim": "the volume bound to the claim",
}

#: Resource type -> attributes (paths as the diff prints them, matched as prefixes) documented as "Forces new
#: resource" in the AWS provider: changing one destroys and recreates a stateful resource in place. Only the
#: stateful types, and only attributes we are sure of; the Terraform plan stays the authority.
REPLACING_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "aws_s3_bucket": ("bucket", "bucket_prefix"),
    "aws_efs_file_system": ("creation_token", "encrypted", "kms_key_id", "performance_mode"),
    "aws_db_instance": ("identifier", "identifier_prefix"),
    "aws_rds_cluster": ("cluster_identifier", "cluster_identifier_prefix"),
    "aws_dynamodb_table": ("name",),
    "aws_kms_key": ("customer_master_key_spec", "key_usage", "multi_region"),
    "aws_secretsmanager_secret": ("name", "name_prefix"),
    "aws_ecr_repository": ("name", "encryption_configuration"),
    "aws_eks_cluster": ("name", "kubernetes_network_config.service_ipv4_cidr"),
    "aws_cloudwatch_log_group": ("name", "name_prefix"),
}


def is_stateful(resource_type: str) -> bool:
    return resource_type in STATEFUL_TYPES


def replacing_attributes(resource_type: str, changed_paths: list[str] | tuple[str, ...]) -> list[str]:
    """The changed attribute paths that force a replacement of a stateful resource of this type."""
    prefixes = REPLACING_ATTRIBUTES.get(resource_type, ())
    return [path for path in changed_paths
            if any(path == p or path.startswith((f"{p}.", f"{p}[", f"{p}:")) for p in prefixes)]
