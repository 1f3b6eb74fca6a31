"""IAM role policies name the buckets, secrets, keys and log groups they grant: never ``*`` for s3, secretsmanager,
kms or logs actions.

Built-ins stop short here: CKV_AWS_62/63 and CKV2_AWS_40 look for full admin or IAM ``*`` only, CKV_AWS_290 and
CKV_AWS_355 (cloudsplaining) cover write and "restrictable" actions only and, on cdktf's JSON, give no result
for aws_iam_role_policy at all (checked on the gate output). The policy must be a literal JSON string, as the
platform writes it (references such as ``${aws_s3_bucket.x.arn}`` inside the text are fine).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories
from plat_common import PlatformCheck, as_list, policy_document

ROLE_POLICY = ["aws_iam_role_policy"]
#: Services whose actions must always name their resources (README.md, "Workload identities").
SCOPED_SERVICES = ("s3", "secretsmanager", "kms", "logs")
#: The resource-type word that starts the resource part of most ARNs (``key/``, ``secret:``, ``log-group:``).
_RESOURCE_TYPE = re.compile(r"^[A-Za-z0-9-]+[:/]")


def _scoped_actions(statement: dict[str, Any]) -> list[str]:
    """The statement's actions on the scoped services, wildcards included (``*``, ``s3:*``, ``kms:Decrypt*``,
    ``S3:GetObject``); an Allow with NotAction grants every service but those listed, so it counts."""
    if "NotAction" in statement:
        return [f"NotAction {', '.join(str(a) for a in as_list(statement['NotAction']))}"]
    found = []
    for action in as_list(statement.get("Action")):
        service = str(action).split(":", 1)[0].strip().lower()
        if any(fnmatch.fnmatchcase(scoped, service) for scoped in SCOPED_SERVICES):
            found.append(str(action))
    return found


def _unnamed(resource: Any) -> bool:
    """True for ``*`` and for an ARN whose resource part is only a wildcard (``arn:aws:s3:::*``,
    ``arn:aws:kms:eu-west-1:111111111111:key/*``, ``arn:aws:logs:*:*:*``). A reference to a resource
    (``${aws_kms_key.data.arn}``, ``${aws_s3_bucket.x.arn}/*``) names it."""
    text = str(resource).strip()
    if "${" in text:
        return False
    if not text.startswith("arn:"):
        return text.startswith("*")
    parts = text.split(":", 5)
    if len(parts) < 6:
        return True
    service, region, account, rest = parts[2], parts[3], parts[4], parts[5]
    if not (service == "s3" and not region and not account):  # S3 bucket ARNs have no resource-type word
        rest = _RESOURCE_TYPE.sub("", rest, count=1)
    return not rest or rest.startswith("*")


class RolePolicyNamesScopedResources(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_22",
            name="IAM role policies grant s3, secretsmanager, kms and logs actions on named resources only",
            why="a * resource turns one workload's access into access to every bucket, secret, key and log group "
                "of the account: one compromised pod then reads all training data and every credential",
            resources=ROLE_POLICY, categories=[CheckCategories.IAM])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        policy = policy_document(conf)
        if policy is None:
            yield ("policy is not literal JSON (an expression or a data source): write it as a JSON string so "
                   "it can be reviewed and checked")
            return
        for number, statement in enumerate(as_list(policy.get("Statement")), start=1):
            if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                continue
            actions = _scoped_actions(statement)
            if not actions:
                continue
            label = statement.get("Sid") or f"statement {number}"
            if "NotResource" in statement:
                yield f"{label}: {', '.join(actions)} with NotResource (every resource but those listed)"
            unnamed = [str(r) for r in as_list(statement.get("Resource")) if _unnamed(r)]
            if unnamed:
                yield f"{label}: {', '.join(actions)} on {', '.join(unnamed)}"


RolePolicyNamesScopedResources()
