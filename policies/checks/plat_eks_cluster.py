"""The EKS control plane: every log type, KMS envelope encryption of secrets, API-only authentication, and no
API endpoint open to the internet."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories
from plat_common import PlatformCheck, block, blocks, is_false, is_reference, is_set, scalar, scalars

CLUSTER = ["aws_eks_cluster"]
CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
OPEN_TO_ALL = {"0.0.0.0/0", "::/0"}
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/.+$")


class ClusterLogsAllTypes(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_10", name="EKS clusters enable all five control-plane log types",
            why="without the audit and authenticator logs nobody can tell who did what to the cluster after an "
                "incident",
            resources=CLUSTER, categories=[CheckCategories.LOGGING])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        enabled = set(scalars(conf, "enabled_cluster_log_types"))
        missing = [t for t in CONTROL_PLANE_LOG_TYPES if t not in enabled]
        if missing:
            yield f"enabled_cluster_log_types lacks {', '.join(missing)}"


class ClusterSecretsEncryption(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_11", name="EKS clusters encrypt secrets with a customer KMS key",
            why="envelope encryption keeps Kubernetes secrets unreadable in etcd backups and lets us revoke the key",
            resources=CLUSTER, categories=[CheckCategories.ENCRYPTION])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        for config in blocks(conf, "encryption_config"):
            if "secrets" not in scalars(config, "resources"):
                continue
            key_arn = scalar(block(config, "provider") or {}, "key_arn")
            if is_reference(key_arn) or (isinstance(key_arn, str) and _KMS_KEY_ARN.match(key_arn)):
                return
            yield f"encryption_config for secrets has key_arn {key_arn!r}, neither a reference nor a KMS key ARN"
            return
        yield "no encryption_config with resources containing 'secrets'"


class ClusterAuthenticationModeApi(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_12", name="EKS clusters authenticate through access entries only (authentication_mode API)",
            why="the aws-auth ConfigMap is edited by hand inside the cluster, invisible to Terraform and review; "
                "access entries are API objects in code",
            resources=CLUSTER, categories=[CheckCategories.IAM])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        mode = scalar(block(conf, "access_config") or {}, "authentication_mode")
        if mode != "API":
            yield f"access_config.authentication_mode is {mode!r}, not 'API'"


class ClusterEndpointNotOpenToAll(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_13", name="EKS cluster API endpoints are not open to the whole internet",
            why="a public endpoint open to 0.0.0.0/0 exposes the Kubernetes API to credential stuffing and to "
                "any API-server vulnerability",
            resources=CLUSTER, categories=[CheckCategories.NETWORKING])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        vpc_config = block(conf, "vpc_config") or {}
        # The provider's default for endpoint_public_access is true: only an explicit false makes it private.
        if is_false(vpc_config.get("endpoint_public_access")):
            return
        cidrs = scalars(vpc_config, "public_access_cidrs")
        if not cidrs:
            yield "public endpoint without public_access_cidrs (AWS opens it to 0.0.0.0/0)"
        elif OPEN_TO_ALL & {str(c).strip() for c in cidrs}:
            yield f"public endpoint open to {', '.join(sorted(OPEN_TO_ALL & set(cidrs)))}"
        elif not all(is_set(c) for c in cidrs):
            yield "public_access_cidrs has an empty entry"


ClusterLogsAllTypes()
ClusterSecretsEncryption()
ClusterAuthenticationModeApi()
ClusterEndpointNotOpenToAll()
