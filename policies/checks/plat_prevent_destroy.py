"""Stateful resources carry ``lifecycle.prevent_destroy = true``, so no plan can destroy them.

A per-resource check cannot see which environment a stack belongs to. The rule is staging's and prod's
(``protection.prevent_destroy`` in environments/*.yaml); dev turns it off by design, and policies/skips.yaml
waives this check in the dev stacks only, with that reason. A prod-tier environment that turns protection off
(``protection.unprotected_prod_override``) then fails here until a skip with the override's reason is added.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories
from plat_common import PlatformCheck, block, is_true, scalar

#: What a destroy loses for good (README.md, "Protection against loss"): data, keys that decrypt it, secrets
#: and the cluster.
STATEFUL = ["aws_s3_bucket", "aws_efs_file_system", "aws_db_instance", "aws_kms_key", "aws_secretsmanager_secret",
            "aws_eks_cluster"]


class StatefulResourcePreventDestroy(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_23",
            name="Stateful resources (buckets, file systems, databases, KMS keys, secrets, clusters) set "
                 "lifecycle.prevent_destroy",
            why="a renamed construct, a moved resource or a mistaken destroy replaces the resource: the data, the "
                "key that decrypts it or the secret is gone, with no undo in the plan",
            resources=STATEFUL, categories=[CheckCategories.BACKUP_AND_RECOVERY])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        lifecycle = block(conf, "lifecycle")
        if lifecycle is None:
            yield "no lifecycle block: prevent_destroy is off"
        elif not is_true(lifecycle.get("prevent_destroy")):
            value = scalar(lifecycle, "prevent_destroy")
            yield f"lifecycle.prevent_destroy is {'not set' if value is None else repr(value)}, not true"


StatefulResourcePreventDestroy()
