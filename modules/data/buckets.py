"""An S3 bucket that survives mistakes: SSE-KMS, versioning, no public access, TLS only, access logs, lifecycle."""

from __future__ import annotations

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
    S3BucketLifecycleConfigurationRuleTransition,
)
from cdktf_cdktf_provider_aws.s3_bucket_logging import S3BucketLoggingA
from cdktf_cdktf_provider_aws.s3_bucket_object_lock_configuration import (
    S3BucketObjectLockConfigurationA,
    S3BucketObjectLockConfigurationRuleA,
    S3BucketObjectLockConfigurationRuleDefaultRetentionA,
)
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import S3BucketVersioningA, S3BucketVersioningVersioningConfiguration
from constructs import Construct

from modules.common.iam import policy_document

#: Days before an unfinished multipart upload's parts are deleted.
ABORT_INCOMPLETE_UPLOADS_DAYS = 7


class SecureBucket(Construct):
    """A versioned, SSE-KMS (bucket key) encrypted bucket with every public access blocked, ACLs disabled, a policy
    that refuses plain HTTP, and lifecycle rules for old versions and abandoned uploads.

    Inputs (keyword-only):
      name: the globally unique bucket name.
      kms_key_arn: the customer-managed key for default encryption.
      noncurrent_version_days: days a replaced or deleted version is kept.
      access_log_bucket: the bucket receiving this bucket's server access logs (default: none, for the logs
        bucket itself, which would otherwise log into itself).
      access_log_prefix: key prefix of this bucket's access logs (default ``<name>/``).
      expire_current_days: delete objects this many days after creation (default never; for logs).
      intelligent_tiering: move objects to S3 Intelligent-Tiering right away (default false; for raw data).
      object_lock_days: GOVERNANCE-mode default retention in days; enables object lock (default off).
      extra_policy_statements: statements added to the bucket policy (default none).
      prevent_destroy: refuse destroy and replacement in Terraform (default true).
      force_destroy: let Terraform delete a non-empty bucket (default false).
    Exposes ``bucket``, ``arn`` and ``name``.
    """

    def __init__(self, scope: Construct, id: str, *, name: str, kms_key_arn: str, noncurrent_version_days: int,
                 access_log_bucket: str | None = None, access_log_prefix: str | None = None,
                 expire_current_days: int | None = None, intelligent_tiering: bool = False,
                 object_lock_days: int | None = None, extra_policy_statements: list[dict] | None = None,
                 prevent_destroy: bool = True, force_destroy: bool = False) -> None:
        super().__init__(scope, id)
        if len(name) > 63:
            raise ValueError(f"bucket name {name!r} has {len(name)} characters; S3 allows at most 63")
        if prevent_destroy and force_destroy:
            raise ValueError(f"bucket {name}: force_destroy contradicts prevent_destroy; choose one")
        self.bucket = S3Bucket(self, "bucket", bucket=name, force_destroy=force_destroy,
                               object_lock_enabled=object_lock_days is not None or None,
                               lifecycle=TerraformResourceLifecycle(prevent_destroy=prevent_destroy))
        self.arn, self.name = self.bucket.arn, self.bucket.bucket
        bucket_id = self.bucket.id
        S3BucketOwnershipControls(self, "ownership", bucket=bucket_id,
                                  rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"))
        S3BucketPublicAccessBlock(self, "public-access-block", bucket=bucket_id, block_public_acls=True,
                                  block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True)
        S3BucketVersioningA(self, "versioning", bucket=bucket_id,
                            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"))
        S3BucketServerSideEncryptionConfigurationA(
            self, "encryption", bucket=bucket_id,
            rule=[S3BucketServerSideEncryptionConfigurationRuleA(
                bucket_key_enabled=True,
                apply_server_side_encryption_by_default=(
                    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn)))])
        deny_plain_http = {
            "Sid": "DenyPlainHttp", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [self.arn, f"{self.arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
        S3BucketPolicy(self, "policy", bucket=bucket_id,
                       policy=policy_document([deny_plain_http, *(extra_policy_statements or [])]))
        if access_log_bucket is not None:
            S3BucketLoggingA(self, "access-logs", bucket=bucket_id, target_bucket=access_log_bucket,
                             target_prefix=access_log_prefix or f"{name}/")
        self._lifecycle(noncurrent_version_days, expire_current_days, intelligent_tiering)
        if object_lock_days is not None:
            S3BucketObjectLockConfigurationA(
                self, "object-lock", bucket=bucket_id,
                rule=S3BucketObjectLockConfigurationRuleA(
                    default_retention=S3BucketObjectLockConfigurationRuleDefaultRetentionA(
                        mode="GOVERNANCE", days=object_lock_days)))

    def _lifecycle(self, noncurrent_days: int, expire_days: int | None, intelligent_tiering: bool) -> None:
        everything = [S3BucketLifecycleConfigurationRuleFilter(prefix="")]
        rules = [
            S3BucketLifecycleConfigurationRule(
                id="expire-noncurrent-versions", status="Enabled", filter=everything,
                noncurrent_version_expiration=[S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                    noncurrent_days=noncurrent_days)]),
            S3BucketLifecycleConfigurationRule(
                id="abort-incomplete-uploads", status="Enabled", filter=everything,
                abort_incomplete_multipart_upload=[S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                    days_after_initiation=ABORT_INCOMPLETE_UPLOADS_DAYS)]),
        ]
        if expire_days is not None:
            rules.append(S3BucketLifecycleConfigurationRule(
                id="expire-current-objects", status="Enabled", filter=everything,
                expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=expire_days)]))
        if intelligent_tiering:
            rules.append(S3BucketLifecycleConfigurationRule(
                id="intelligent-tiering", status="Enabled", filter=everything,
                transition=[S3BucketLifecycleConfigurationRuleTransition(
                    days=0, storage_class="INTELLIGENT_TIERING")]))
        S3BucketLifecycleConfiguration(self, "lifecycle", bucket=self.bucket.id, rule=rules)
