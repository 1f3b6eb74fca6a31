"""Argo CD's values computed from the environment: the platform's restricted AppProject, and sign-in (local
admin off; SSO from ``platform.gitops.sso``).

The root application (app of apps), every child it creates and the image Applications run in the ``platform``
AppProject: only the GitOps repository (and the chart the image Applications render with), only the in-cluster
API and the namespaces the platform gives applications, no cluster-scoped kind, and none of the namespace
guardrails Terraform owns. AppProjects cannot be created from Git, so the root cannot widen its own project.
(Argo CD's built-in ``default`` project is created by the server itself, so Helm cannot take it over: it stays as
Argo CD makes it.)
"""

from __future__ import annotations

from typing import Any

import yaml

from platform_config.helm_values import chart_catalogue
from platform_config.models import APPLICATION_NAMESPACES, Environment

ROOT_PROJECT = "platform"
#: The chart the image Applications render their manifests with (platform_config/gitops.py), besides Git.
MANIFESTS_CHART = "platform-resources"
ARGOCD_NAMESPACE = "argocd"
IN_CLUSTER = "https://kubernetes.default.svc"
#: Cluster-scoped kinds the applications may create: none. Namespaces, CRDs, RBAC and storage come from Terraform.
CLUSTER_RESOURCE_ALLOW_LIST: list[dict[str, str]] = []
#: Namespaced kinds Git must not touch: the guardrails Terraform sets per namespace, and projects themselves.
NAMESPACE_RESOURCE_DENY_LIST = [
    {"group": "", "kind": "ResourceQuota"}, {"group": "", "kind": "LimitRange"},
    {"group": "networking.k8s.io", "kind": "NetworkPolicy"}, {"group": "argoproj.io", "kind": "AppProject"},
]


def destination_namespaces() -> list[str]:
    """Where the applications may deploy: the application namespaces, and argocd for the child Applications."""
    return sorted([*APPLICATION_NAMESPACES, ARGOCD_NAMESPACE])


def source_repositories(environment: Environment) -> list[str]:
    """The GitOps repository, and the chart repository of the image Applications' manifests chart."""
    return [environment.platform.gitops.repository_url, chart_catalogue()[MANIFESTS_CHART].repository]


def argocd_apps_values(environment: Environment) -> dict[str, Any]:
    gitops = environment.platform.gitops
    return {
        "projects": {
            ROOT_PROJECT: {
                "namespace": ARGOCD_NAMESPACE,
                "description": f"The platform's applications of {environment.name}, from its GitOps repository",
                "sourceRepos": source_repositories(environment),
                "destinations": [{"server": IN_CLUSTER, "namespace": n} for n in destination_namespaces()],
                "clusterResourceWhitelist": list(CLUSTER_RESOURCE_ALLOW_LIST),
                "namespaceResourceBlacklist": list(NAMESPACE_RESOURCE_DENY_LIST),
            },
        },
        "applications": {"platform-root": {
            "project": ROOT_PROJECT,
            "source": {"repoURL": gitops.repository_url, "targetRevision": gitops.revision, "path": gitops.path}}},
    }


def argo_cd_values(environment: Environment) -> dict[str, Any]:
    """Sign-in: the local admin off; with SSO, the OIDC client and group roles (anyone else gets nothing)."""
    sso = environment.platform.gitops.sso
    cm: dict[str, Any] = {"admin.enabled": False}
    rbac: dict[str, Any] = {"policy.default": "", "scopes": "[groups]"}
    if sso is not None:
        cm["url"] = sso.url
        cm["oidc.config"] = yaml.safe_dump({
            "name": "SSO", "issuer": sso.issuer, "clientID": sso.client_id, "enablePKCEAuthentication": True,
            "requestedScopes": ["openid", "profile", "email", "groups"]}, sort_keys=False)
        rbac["policy.csv"] = "".join(
            [f"g, {group}, role:admin\n" for group in sso.admin_groups]
            + [f"g, {group}, role:readonly\n" for group in sso.readonly_groups])
    return {"configs": {"cm": cm, "rbac": rbac}}
