"""External Secrets resources generated from the secrets catalogue: in every namespace that receives secrets, one
SecretStore with that namespace's own AWS role, and one ExternalSecret per Kubernetes Secret that entries of the
catalogue fill.

A namespace reads only its own secrets: its SecretStore authenticates as the namespace's ``secrets-reader``
service account (a namespaced SecretStore can only name service accounts of its own namespace), and the AWS role
that service account's token may assume (``sub`` = ``system:serviceaccount:<namespace>:secrets-reader``) may read
only the secrets consumed in that namespace. The controller itself holds no secret access, so a SecretStore
without credentials reads nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from platform_config.data_layer import PlatformSecret, platform_secrets, secret_name

API_VERSION = "external-secrets.io/v1"
STORE_NAME = "namespace-secrets"
#: The service account whose projected token the namespace's SecretStore exchanges for its AWS role.
READER_SERVICE_ACCOUNT = "secrets-reader"
#: The annotation External Secrets reads the role ARN from (the EKS IRSA annotation).
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
#: How often values are re-read from Secrets Manager (a rotated key reaches pods within this time).
REFRESH_INTERVAL = "1h"

Manifest = dict[str, Any]


def store_ref() -> dict[str, str]:
    """The ``secretStoreRef`` of every ExternalSecret: the SecretStore of its own namespace."""
    return {"kind": "SecretStore", "name": STORE_NAME}


def reader_subject(namespace: str) -> str:
    """The ``sub`` claim of the namespace's reader service account token."""
    return f"system:serviceaccount:{namespace}:{READER_SERVICE_ACCOUNT}"


def namespace_secret_stores(region: str, role_arns: Mapping[str, str]) -> list[Manifest]:
    """Per namespace: the reader service account (annotated with the namespace's role) and the SecretStore that
    authenticates as it."""
    manifests: list[Manifest] = []
    for namespace, role_arn in sorted(role_arns.items()):
        manifests.append({"apiVersion": "v1", "kind": "ServiceAccount",
                          "metadata": {"name": READER_SERVICE_ACCOUNT, "namespace": namespace,
                                       "annotations": {ROLE_ARN_ANNOTATION: role_arn}},
                          "automountServiceAccountToken": False})
        manifests.append({"apiVersion": API_VERSION, "kind": "SecretStore",
                          "metadata": {"name": STORE_NAME, "namespace": namespace},
                          "spec": {"provider": {"aws": {
                              "service": "SecretsManager", "region": region,
                              "auth": {"jwt": {"serviceAccountRef": {"name": READER_SERVICE_ACCOUNT}}}}}}})
    return manifests


def catalogue_secrets_by_namespace(secrets: dict[str, PlatformSecret] | None = None) -> dict[str, list[str]]:
    """Namespace -> the catalogue keys synced into it."""
    secrets = platform_secrets() if secrets is None else secrets
    found: dict[str, list[str]] = defaultdict(list)
    for key, entry in secrets.items():
        for namespace in entry.synced_to:
            found[namespace].append(key)
    return {namespace: sorted(keys) for namespace, keys in sorted(found.items())}


def external_secrets(environment_name: str, secrets: dict[str, PlatformSecret] | None = None) -> list[Manifest]:
    secrets = platform_secrets() if secrets is None else secrets
    grouped: dict[tuple[str, str], list[tuple[str, PlatformSecret]]] = defaultdict(list)
    for key, entry in secrets.items():
        for namespace in entry.synced_to:
            grouped[(namespace, entry.kubernetes_secret.name)].append((key, entry))
    manifests = []
    for (namespace, target), entries in sorted(grouped.items()):
        spec: dict[str, Any] = {
            "refreshInterval": REFRESH_INTERVAL,
            "secretStoreRef": store_ref(),
            "target": {"name": target, "creationPolicy": "Owner", "deletionPolicy": "Retain"},
        }
        data = [{"secretKey": e.kubernetes_secret.key, "remoteRef": {"key": secret_name(environment_name, k)}}
                for k, e in entries if not e.kubernetes_secret.from_json]
        data_from = [{"extract": {"key": secret_name(environment_name, k)}}
                     for k, e in entries if e.kubernetes_secret.from_json]
        labels = {k: v for _, e in entries for k, v in e.kubernetes_secret.labels.items()}
        if data:
            spec["data"] = data
        if data_from:
            spec["dataFrom"] = data_from
        types = {e.kubernetes_secret.type for _, e in entries} - {None}
        if len(types) > 1:
            raise ValueError(f"data/secrets.yaml: Secret {namespace}/{target}: entries filling it give different "
                             f"types {sorted(types)} (allowed: one type per Secret)")
        template: dict[str, Any] = {}
        if labels:
            template["metadata"] = {"labels": labels}
        if types:
            template["type"] = types.pop()
        if template:
            spec["target"]["template"] = template
        manifests.append({"apiVersion": API_VERSION, "kind": "ExternalSecret",
                          "metadata": {"name": target, "namespace": namespace}, "spec": spec})
    return manifests
