"""The <env>-data stacks: buckets, EFS, the MLflow database and secrets, built so nothing is lost."""

import json

import pytest

from platform_config.data_layer import platform_secrets
from tests_support import ENVIRONMENT_NAMES, by_path, one, reference_to, resources

BUCKETS = ("raw-data", "artifacts", "logs", "model-registry")


@pytest.fixture(scope="module")
def prod(stacks):
    return stacks["prod-data"]


def bucket_settings(stack, resource_type):
    """Per bucket purpose, the settings resource of that type that references it."""
    buckets = {name: body["bucket"] for name, body in resources(stack, "aws_s3_bucket").items()}
    purpose_of = {name: next(p for p in BUCKETS if f"-{p}-" in buckets[name]) for name in buckets}
    found = {}
    for body in resources(stack, resource_type).values():
        bucket_name = body["bucket"].split(".")[1]
        found[purpose_of[bucket_name]] = body
    return found


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_bucket_names_derive_from_environment_account_and_region(stacks, environments, env_name):
    env = environments[env_name]
    names = sorted(b["bucket"] for b in resources(stacks[f"{env_name}-data"], "aws_s3_bucket").values())
    assert names == sorted(f"mlops-{env_name}-{p}-{env.account_id}-{env.region}" for p in BUCKETS)


def test_every_bucket_has_sse_kms_with_bucket_keys_from_the_data_key(prod):
    for purpose, config in bucket_settings(prod, "aws_s3_bucket_server_side_encryption_configuration").items():
        [rule] = config["rule"]
        assert rule["bucket_key_enabled"] is True, purpose
        default = rule["apply_server_side_encryption_by_default"]
        assert default["sse_algorithm"] == "aws:kms", purpose
        assert reference_to("aws_kms_key", "arn").match(default["kms_master_key_id"]), purpose
    assert len(bucket_settings(prod, "aws_s3_bucket_server_side_encryption_configuration")) == 4


def test_every_bucket_is_versioned_private_and_tls_only(prod):
    versioning = bucket_settings(prod, "aws_s3_bucket_versioning")
    blocks = bucket_settings(prod, "aws_s3_bucket_public_access_block")
    policies = bucket_settings(prod, "aws_s3_bucket_policy")
    for purpose in BUCKETS:
        assert versioning[purpose]["versioning_configuration"]["status"] == "Enabled"
        assert all(blocks[purpose][flag] is True for flag in
                   ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))
        deny = json.loads(policies[purpose]["policy"])["Statement"][0]
        assert deny["Effect"] == "Deny"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_every_bucket_but_the_logs_bucket_sends_access_logs_to_the_logs_bucket(prod):
    logging = bucket_settings(prod, "aws_s3_bucket_logging")
    assert set(logging) == {"raw-data", "artifacts", "model-registry"}
    logs_bucket = next(n for n, b in resources(prod, "aws_s3_bucket").items() if "-logs-" in b["bucket"])
    assert {entry["target_bucket"] for entry in logging.values()} == {f"${{aws_s3_bucket.{logs_bucket}.id}}"}


def test_lifecycle_rules_expire_old_versions_abort_uploads_tier_raw_data_and_expire_logs(prod, environments):
    settings = environments["prod"].data.buckets
    lifecycles = bucket_settings(prod, "aws_s3_bucket_lifecycle_configuration")
    for purpose, config in lifecycles.items():
        rules = {rule["id"]: rule for rule in config["rule"]}
        assert rules["expire-noncurrent-versions"]["noncurrent_version_expiration"] == [
            {"noncurrent_days": settings.noncurrent_version_days}], purpose
        assert rules["abort-incomplete-uploads"]["abort_incomplete_multipart_upload"] == [
            {"days_after_initiation": 7}], purpose
    assert {r["id"] for r in lifecycles["raw-data"]["rule"]} >= {"intelligent-tiering"}
    logs_rules = {r["id"]: r for r in lifecycles["logs"]["rule"]}
    assert logs_rules["expire-current-objects"]["expiration"] == [{"days": settings.access_log_days}]


def test_the_model_registry_has_object_lock_in_prod_and_not_in_dev(stacks):
    [lock] = resources(stacks["prod-data"], "aws_s3_bucket_object_lock_configuration").values()
    assert lock["rule"]["default_retention"] == {"mode": "GOVERNANCE", "days": 30}
    registry = next(b for b in resources(stacks["prod-data"], "aws_s3_bucket").values()
                    if "-model-registry-" in b["bucket"])
    assert registry["object_lock_enabled"] is True
    assert resources(stacks["dev-data"], "aws_s3_bucket_object_lock_configuration") == {}


def test_efs_is_encrypted_backed_up_tiered_and_reachable_on_nfs_only_from_the_nodes(prod):
    fs = one(prod, "aws_efs_file_system")
    assert fs["encrypted"] is True
    assert reference_to("aws_kms_key", "arn").match(fs["kms_key_id"])
    assert fs["lifecycle_policy"] == [{"transition_to_ia": "AFTER_30_DAYS"},
                                      {"transition_to_primary_storage_class": "AFTER_1_ACCESS"}]
    assert one(prod, "aws_efs_backup_policy")["backup_policy"] == {"status": "ENABLED"}
    assert len(resources(prod, "aws_efs_mount_target")) == 3
    rule = by_path(prod, "aws_vpc_security_group_ingress_rule")["efs/nfs-from-nodes"]
    assert (rule["from_port"], rule["to_port"]) == (2049, 2049)
    assert "cross-stack-reference-input-prod-cluster" in rule["referenced_security_group_id"]
    paths = sorted(a["root_directory"]["path"] for a in resources(prod, "aws_efs_access_point").values())
    assert paths == ["/datasets", "/models", "/shared"]


def test_the_mlflow_database_is_private_encrypted_and_keeps_its_password_out_of_state(prod):
    db = one(prod, "aws_db_instance")
    assert db["engine"] == "postgres"
    assert db["storage_encrypted"] is True
    assert reference_to("aws_kms_key", "arn").match(db["kms_key_id"])
    assert db["manage_master_user_password"] is True
    assert "password" not in db
    assert db["publicly_accessible"] is False
    assert (db["multi_az"], db["deletion_protection"], db["backup_retention_period"]) == (True, True, 30)
    rule = by_path(prod, "aws_vpc_security_group_ingress_rule")["mlflow-database/postgres-from-nodes"]
    assert (rule["from_port"], rule["to_port"]) == (5432, 5432)


def test_dev_database_is_single_az_and_may_be_deleted_without_a_final_snapshot(stacks):
    db = one(stacks["dev-data"], "aws_db_instance")
    assert (db["multi_az"], db["deletion_protection"], db["skip_final_snapshot"]) == (False, False, True)


def test_every_platform_secret_exists_encrypted_with_the_data_key_and_without_a_value(stacks):
    for env_name in ENVIRONMENT_NAMES:
        stack = stacks[f"{env_name}-data"]
        secrets = {s["name"]: s for s in resources(stack, "aws_secretsmanager_secret").values()}
        assert set(secrets) == {f"mlops-{env_name}/{key}" for key in platform_secrets()}
        assert all(reference_to("aws_kms_key", "arn").match(s["kms_key_id"]) for s in secrets.values())
        assert resources(stack, "aws_secretsmanager_secret_version") == {}


STATEFUL_TYPES = ("aws_s3_bucket", "aws_efs_file_system", "aws_db_instance", "aws_kms_key",
                  "aws_secretsmanager_secret", "aws_eks_cluster")


def test_every_stateful_resource_of_a_protected_environment_has_prevent_destroy(stacks, stack_environments):
    protected = {name for name, env in stack_environments.items() if env.protection.prevent_destroy}
    checked = 0
    for name in protected:
        for resource_type in STATEFUL_TYPES:
            for address, body in resources(stacks[name], resource_type).items():
                assert body.get("lifecycle", {}).get("prevent_destroy") is True, f"{name}: {resource_type}.{address}"
                checked += 1
    protected_environments = {stack_environments[name].name for name in protected}
    assert checked >= len(protected_environments) * (4 + 1 + 1 + 3 + len(platform_secrets()) + 1)


def test_no_bucket_can_be_force_destroyed_in_prod(stacks):
    assert all(b["force_destroy"] is False for b in resources(stacks["prod-data"], "aws_s3_bucket").values())


def test_no_secret_value_or_password_is_synthesized(stacks):
    text = json.dumps(stacks)
    for forbidden in ('"password"', '"secret_string"', '"master_password"', "secret_binary"):
        assert forbidden not in text
