"""External Secrets resources generated from the secrets catalogue: one ClusterSecretStore for Secrets Manager and,
per namespace, one ExternalSecret per Kubernetes Secret that entries of the catalogue fill."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from platform_config.data_layer import PlatformSecret, platform_secrets, secret_name

API_VERSION = "external-secrets.io/v1"
STORE_NAME = "aws-secrets-manager"
#: How often values are re-read from Secrets Manager (a rotated key reaches pods within this time).
REFRESH_INTERVAL = "1h"

Manifest = dict[str, Any]


def cluster_secret_store(region: str, namespaces: list[str]) -> Manifest:
    """The store, usable only from the namespaces that receive platform secrets. No credentials are configured:
    the controller uses its own Pod Identity role, which may read the platform's secrets and nothing else."""
    return {"apiVersion": API_VERSION, "kind": "ClusterSecretStore", "metadata": {"name": STORE_NAME},
            "spec": {"provider": {"aws": {"service": "SecretsManager", "region": region}},
                     "conditions": [{"namespaces": sorted(namespaces)}]}}


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
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": STORE_NAME},
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
        if labels:
            spec["target"]["template"] = {"metadata": {"labels": labels}}
        manifests.append({"apiVersion": API_VERSION, "kind": "ExternalSecret",
                          "metadata": {"name": target, "namespace": namespace}, "spec": spec})
    return manifests


def secret_namespaces(secrets: dict[str, PlatformSecret] | None = None) -> list[str]:
    secrets = platform_secrets() if secrets is None else secrets
    return sorted({namespace for entry in secrets.values() for namespace in entry.synced_to})
