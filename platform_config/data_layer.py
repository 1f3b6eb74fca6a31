"""The data layer's catalogues: bucket purposes, the platform's secrets and the workload identities.

Pure data (``data/secrets.yaml``, ``data/workload_identities.yaml``) validated into frozen models; the constructs
and later layers (namespaces, service accounts, External Secrets) read the same definitions.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, model_validator

DATA_DIR = Path(__file__).with_name("data")

#: The platform's buckets, by purpose.
BUCKET_PURPOSES = ("raw-data", "artifacts", "logs", "model-registry")
#: Log groups the data layer creates for workloads, by short name.
WORKLOAD_LOG_GROUPS = ("containers",)
#: How EFS volumes mount: TLS (the file system policy refuses plain NFS) and IAM, so the CSI driver's node plugin
#: mounts as the node's role, which the file system policy allows; a mount without ``iam`` is anonymous and refused.
EFS_MOUNT_OPTIONS = ("tls", "iam")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BucketAccess(StrEnum):
    READ_ONLY = "read-only"
    READ_WRITE = "read-write"


class KubernetesSecretTarget(_Frozen):
    """Where a secret's value lands in the cluster: a key of a Kubernetes Secret, or all fields of a JSON value."""

    name: str
    key: str | None = None
    from_json: bool = False
    labels: dict[str, str] = {}
    #: The Secret's type (default Opaque), e.g. ``kubernetes.io/tls`` for a JSON value with tls.crt and tls.key.
    type: str | None = None

    @model_validator(mode="after")
    def _key_or_json(self) -> KubernetesSecretTarget:
        if (self.key is None) == (not self.from_json):
            raise ValueError(f"Kubernetes Secret {self.name}: give either 'key' or 'from_json: true'")
        return self


class PlatformSecret(_Frozen):
    description: str
    synced_to: list[str]
    kubernetes_secret: KubernetesSecretTarget


class WorkloadIdentity(_Frozen):
    namespace: str
    service_account: str
    buckets: dict[str, BucketAccess] = {}
    secrets: list[str] = []
    #: Log groups it writes to (create streams, put events).
    log_groups: list[str] = []
    #: Log groups it reads with CloudWatch Logs Insights queries (describe, query, read results).
    log_queries: list[str] = []

    @model_validator(mode="after")
    def _names_exist(self) -> WorkloadIdentity:
        unknown = sorted(set(self.buckets) - set(BUCKET_PURPOSES))
        unknown += sorted(set(self.secrets) - set(platform_secrets()))
        unknown += sorted(set(self.log_groups) - set(WORKLOAD_LOG_GROUPS))
        unknown += sorted(set(self.log_queries) - set(WORKLOAD_LOG_GROUPS))
        if unknown:
            raise ValueError(f"unknown bucket, secret or log group {', '.join(unknown)}")
        return self


def _load(name: str):
    with (DATA_DIR / name).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@cache
def platform_secrets() -> dict[str, PlatformSecret]:
    return TypeAdapter(dict[str, PlatformSecret]).validate_python(_load("secrets.yaml"))


@cache
def workload_identities() -> dict[str, WorkloadIdentity]:
    return TypeAdapter(dict[str, WorkloadIdentity]).validate_python(_load("workload_identities.yaml"))


def secret_name(environment_name: str, key: str) -> str:
    return f"mlops-{environment_name}/{key}"


def bucket_name(environment_name: str, purpose: str, account_id: str, region: str) -> str:
    """Globally unique by construction: environment, purpose, account and region."""
    return f"mlops-{environment_name}-{purpose}-{account_id}-{region}"


class ControllerIdentity(_Frozen):
    namespace: str
    service_account: str
    policy: str


@cache
def controller_identities() -> dict[str, ControllerIdentity]:
    return TypeAdapter(dict[str, ControllerIdentity]).validate_python(_load("controller_identities.yaml"))


def controller_policy(name: str, *, cluster_name: str, region: str, account_id: str) -> list[dict]:
    """The statements of ``data/iam/<name>.yaml`` for one cluster."""
    text = (DATA_DIR / "iam" / f"{name}.yaml").read_text(encoding="utf-8")
    for placeholder, value in (("<cluster_name>", cluster_name), ("<region>", region), ("<account_id>", account_id)):
        text = text.replace(placeholder, value)
    return yaml.safe_load(text)
