"""S3 bucket policies deny every request that does not use TLS. Whether each bucket has such a policy (and its
KMS encryption, versioning and public access block) is checked by the graph checks CKV2_PLAT_1-4 beside this
file, since those settings live in separate resources."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories
from plat_common import PlatformCheck, policy_document

BUCKET_POLICY = ["aws_s3_bucket_policy"]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _denies_insecure_transport(statement: dict[str, Any]) -> bool:
    """A statement that denies every principal every S3 action on the bucket and its objects unless TLS is used."""
    if statement.get("Effect") != "Deny":
        return False
    principal = statement.get("Principal")
    if not (principal == "*" or (isinstance(principal, dict) and _as_list(principal.get("AWS")) == ["*"])):
        return False
    if not {"s3:*", "*"} & set(_as_list(statement.get("Action"))):
        return False
    secure = _as_list(((statement.get("Condition") or {}).get("Bool") or {}).get("aws:SecureTransport"))
    if not secure or any(str(v).lower() != "false" for v in secure):
        return False
    resources = [str(r) for r in _as_list(statement.get("Resource"))]
    return any(r.endswith("/*") for r in resources) and any(not r.endswith("/*") for r in resources)


class BucketPolicyDeniesInsecureTransport(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_16", name="S3 bucket policies deny requests without TLS",
            why="without a Deny on aws:SecureTransport=false, clients may read and write objects over plain HTTP",
            resources=BUCKET_POLICY, categories=[CheckCategories.ENCRYPTION])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        policy = policy_document(conf)
        if policy is None:
            yield ("policy is not literal JSON (an expression or a data source): write it as a JSON string so "
                   "it can be reviewed and checked")
            return
        statements = [s for s in _as_list(policy.get("Statement")) if isinstance(s, dict)]
        if not any(_denies_insecure_transport(s) for s in statements):
            yield ("no statement denies Principal * action s3:* on the bucket and bucket/* when "
                   "aws:SecureTransport is false")


BucketPolicyDeniesInsecureTransport()
