"""RDS instances: storage under a customer key, and a master password that Terraform never knows.

Built-ins cover the rest of the data layer's database rules: CKV_AWS_16 (storage encrypted, with any key),
CKV_AWS_17 (not publicly accessible), CKV_AWS_354 (Performance Insights under a customer key). Nothing checks
which key encrypts the storage, nor where the master password comes from.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories
from plat_common import NotApplicable, PlatformCheck, is_set, is_true, scalar

DB_INSTANCE = ["aws_db_instance"]
#: Attributes that put a master password into the configuration (password_wo stays out of the state, but its
#: value still has to come from somewhere Terraform reads).
PASSWORD_ATTRIBUTES = ("password", "password_wo")


def _customer_key(value: Any) -> bool:
    """A KMS key given (a reference or an ARN) that is not an AWS-managed alias such as ``alias/aws/rds``."""
    return is_set(value) and "alias/aws/" not in str(value)


class DbInstanceCustomerKey(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_20", name="RDS instances encrypt their storage with a customer KMS key",
            why="with the AWS-managed aws/rds key anyone allowed to use RDS in the account can read snapshots, "
                "and access cannot be revoked or audited per key policy",
            resources=DB_INSTANCE, categories=[CheckCategories.ENCRYPTION])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        if is_set(conf.get("replicate_source_db")):
            raise NotApplicable  # a read replica inherits the source's encryption
        if not is_true(conf.get("storage_encrypted")):
            yield "storage_encrypted is not true"
        key = scalar(conf, "kms_key_id")
        if not is_set(key):
            yield "kms_key_id is not set (encrypted storage then uses the AWS-managed aws/rds key)"
        elif not _customer_key(key):
            yield f"kms_key_id {key!r} is an AWS-managed key, not a customer KMS key"


class DbInstanceManagedMasterPassword(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_21",
            name="RDS master passwords are generated and kept by RDS in Secrets Manager under a customer key",
            why="a password given to Terraform sits in code, CI variables, the plan and the state file, readable "
                "by everyone who can read any of them; manage_master_user_password keeps it in Secrets Manager only",
            resources=DB_INSTANCE, categories=[CheckCategories.SECRETS])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        if is_set(conf.get("replicate_source_db")):
            raise NotApplicable  # a read replica has the source's master user
        if not is_true(conf.get("manage_master_user_password")):
            yield "manage_master_user_password is not true"
        for attribute in PASSWORD_ATTRIBUTES:
            if attribute in conf:
                yield f"{attribute} is set: the master password must not pass through Terraform"
        if is_true(conf.get("manage_master_user_password")) and not _customer_key(
                scalar(conf, "master_user_secret_kms_key_id")):
            yield ("master_user_secret_kms_key_id is not a customer KMS key: the master password's secret uses "
                   "aws/secretsmanager")


DbInstanceCustomerKey()
DbInstanceManagedMasterPassword()
