"""Customer-managed KMS keys: rotation on, a deletion window, and a key policy that names who may use the key."""

from __future__ import annotations

from collections.abc import Sequence

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from modules.common.iam import policy_document

_USE_KEY = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]


class EncryptionKey(Construct):
    """A symmetric customer-managed key with automatic rotation and an alias.

    Inputs (keyword-only):
      alias: alias name without the ``alias/`` prefix.
      description: what the key protects.
      account_id, region: where the key lives (the key policy names the account's root and regional services).
      deletion_window_days: waiting period before deletion (7-30).
      log_groups: allow CloudWatch Logs to use the key for log groups of this account (default False).
      autoscaling_role_arn: the ARN of the account's Auto Scaling service-linked role, allowed to use the key,
        which managed node groups need to launch instances with encrypted root volumes (default none). KMS refuses
        a key policy that names a role that does not exist: pass a reference to the role's resource, or the ARN
        of a role the account already has.
      s3_access_logs: allow S3 log delivery to write server access logs into SSE-KMS buckets of this account
        (default False).
      prevent_destroy: refuse ``terraform destroy`` and replacements of the key (default False).
    Exposes ``key`` and ``arn``.
    """

    def __init__(self, scope: Construct, id: str, *, alias: str, description: str, account_id: str, region: str,
                 deletion_window_days: int, log_groups: bool = False, autoscaling_role_arn: str | None = None,
                 s3_access_logs: bool = False, prevent_destroy: bool = False) -> None:
        super().__init__(scope, id)
        statements: list[dict] = [{
            "Sid": "AccountAdministersTheKey",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }]
        if log_groups:
            statements.append({
                "Sid": "CloudWatchLogsEncryptsThisAccountsLogGroups",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": _USE_KEY,
                "Resource": "*",
                "Condition": {"ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{account_id}:log-group:*"}},
            })
        if autoscaling_role_arn:
            autoscaling = autoscaling_role_arn
            statements += [
                {"Sid": "AutoScalingUsesTheKeyForVolumes", "Effect": "Allow",
                 "Principal": {"AWS": autoscaling}, "Action": _USE_KEY, "Resource": "*"},
                {"Sid": "AutoScalingGrantsForAttachedVolumes", "Effect": "Allow",
                 "Principal": {"AWS": autoscaling}, "Action": "kms:CreateGrant", "Resource": "*",
                 "Condition": {"Bool": {"kms:GrantIsForAWSResource": True}}},
            ]
        if s3_access_logs:
            statements.append({
                "Sid": "S3LogDeliveryWritesAccessLogs",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            })
        self.key = KmsKey(self, "key", description=description, enable_key_rotation=True,
                          deletion_window_in_days=deletion_window_days, policy=policy_document(statements),
                          lifecycle=TerraformResourceLifecycle(prevent_destroy=prevent_destroy))
        self.arn = self.key.arn
        KmsAlias(self, "alias", name=f"alias/{alias}", target_key_id=self.key.key_id)

    @staticmethod
    def statements_to_use(key_arns: Sequence[str]) -> list[dict]:
        """Policy statements that let a principal encrypt and decrypt with these keys (and no others)."""
        return [
            {"Effect": "Allow", "Action": _USE_KEY, "Resource": list(key_arns)},
            {"Effect": "Allow", "Action": "kms:CreateGrant", "Resource": list(key_arns),
             "Condition": {"Bool": {"kms:GrantIsForAWSResource": True}}},
        ]
