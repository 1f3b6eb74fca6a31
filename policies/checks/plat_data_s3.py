"""S3 in the data layer, where the built-ins stop short.

- CKV2_AWS_61 only asks that a bucket has some lifecycle configuration and CKV_AWS_300 that one rule aborts
  incomplete multipart uploads; nothing expires noncurrent versions, which versioning (CKV2_PLAT_2) keeps for
  ever otherwise: CKV_PLAT_18.
- CKV_AWS_18 passes a bucket that is connected to any aws_s3_bucket_logging, whichever way round (the log
  target passes too) and whatever the target is: CKV_PLAT_19 checks where the logs go.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories
from plat_common import PlatformCheck, blocks, is_set, scalar

LIFECYCLE = ["aws_s3_bucket_lifecycle_configuration"]
LOGGING = ["aws_s3_bucket_logging"]
#: ``${aws_s3_bucket.<name>.id}`` (or ``.bucket``): a bucket of the same configuration.
_BUCKET_REFERENCE = re.compile(r"^\$\{aws_s3_bucket\.([^.}]+)\.(id|bucket)\}$")


def _applies_to_every_object(rule: dict[str, Any]) -> bool:
    """A lifecycle rule without a filter, or with one that selects nothing narrower than the whole bucket (an
    empty prefix, no tag and no object size)."""
    for item in blocks(rule, "filter"):
        for condition in [item, *blocks(item, "and")]:
            if is_set(condition.get("prefix")) or blocks(condition, "tag") or is_set(condition.get("tags")):
                return False
            if is_set(condition.get("object_size_greater_than")) or is_set(condition.get("object_size_less_than")):
                return False
    return not is_set(rule.get("prefix"))


def _positive(value: Any) -> bool:
    try:
        return int(str(value).strip()) > 0
    except ValueError:
        return False


class LifecycleExpiresNoncurrentVersions(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_18",
            name="S3 lifecycle configurations expire noncurrent object versions of the whole bucket",
            why="with versioning on, every overwrite and delete keeps the old version for ever: datasets and "
                "checkpoints are paid for many times over, and deleted data is never really gone",
            resources=LIFECYCLE, categories=[CheckCategories.BACKUP_AND_RECOVERY])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        for rule in blocks(conf, "rule"):
            if scalar(rule, "status") != "Enabled" or not _applies_to_every_object(rule):
                continue
            for expiration in blocks(rule, "noncurrent_version_expiration"):
                if _positive(scalar(expiration, "noncurrent_days")):
                    return
        yield ("no Enabled rule for the whole bucket has noncurrent_version_expiration with noncurrent_days > 0")


class AccessLogsToAManagedLogBucket(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_19",
            name="S3 access logs go to another bucket of this configuration, under a prefix of their own",
            why="a bucket logging into itself logs its own log writes without end; a target named by a literal "
                "string may be a bucket nobody here controls (or one re-created by another account after "
                "deletion), which then receives every request's details",
            resources=LOGGING, categories=[CheckCategories.LOGGING])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        bucket, target = scalar(conf, "bucket"), scalar(conf, "target_bucket")
        match = _BUCKET_REFERENCE.match(str(target).strip()) if isinstance(target, str) else None
        if match is None:
            yield (f"target_bucket {target!r} is not a reference to an aws_s3_bucket of this configuration "
                   "(the logs bucket, with its encryption, versioning, public access block and TLS policy)")
        else:
            source = _BUCKET_REFERENCE.match(str(bucket).strip()) if isinstance(bucket, str) else None
            if source is not None and source.group(1) == match.group(1):
                yield f"the bucket logs into itself (aws_s3_bucket.{match.group(1)})"
        if not is_set(conf.get("target_prefix")):
            yield "target_prefix is not set: the logs of every source bucket are mixed in one place"


LifecycleExpiresNoncurrentVersions()
AccessLogsToAManagedLogBucket()
