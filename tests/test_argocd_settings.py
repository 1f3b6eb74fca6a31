"""Argo CD, as synthesized for every environment: the root application runs in a restricted AppProject, the local
admin is off, and sign-in comes from the environment's OIDC settings.

An Application deploys only what its AppProject permits: a source repository in ``sourceRepos``, a destination
(server and namespace) in ``destinations``, a cluster-scoped kind in ``clusterResourceWhitelist`` (none when
empty), and no namespaced kind of ``namespaceResourceBlacklist``. ``*`` in any of them permits everything.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from platform_config.argocd_settings import IN_CLUSTER, ROOT_PROJECT, destination_namespaces, source_repositories
from tests_support import resources

ENVIRONMENTS = ["dev", "staging", "prod"]
#: Namespaced kinds the applications must never manage: Terraform's guardrails, and projects (self-widening).
MUST_DENY = {("", "ResourceQuota"), ("", "LimitRange"), ("networking.k8s.io", "NetworkPolicy"),
             ("argoproj.io", "AppProject")}


def release_values(stack: dict, name: str) -> dict:
    [release] = [r for r in resources(stack, "helm_release").values() if r["name"] == name]
    return yaml.safe_load(release["values"][0])


def project_problems(apps: dict, repositories: list[str]) -> list[str]:
    """What lets the root application deploy beyond the GitOps repository into the application namespaces."""
    root = apps["applications"]["platform-root"]
    project = apps.get("projects", {}).get(root.get("project", "default"))
    if project is None:
        return [f"the root runs in project {root.get('project', 'default')!r}, which this release does not restrict"]
    problems = []
    if project.get("sourceRepos") != repositories:
        problems.append(f"sourceRepos {project.get('sourceRepos')}")
    for destination in project.get("destinations", []):
        if destination.get("server") != IN_CLUSTER or destination.get("namespace") not in destination_namespaces():
            problems.append(f"destination {destination}")
    for entry in project.get("clusterResourceWhitelist", []):
        problems.append(f"cluster-scoped {entry}")
    denied = {(e["group"], e["kind"]) for e in project.get("namespaceResourceBlacklist", [])}
    problems += [f"namespaced {group or 'core'}/{kind} not denied" for group, kind in sorted(MUST_DENY - denied)]
    if "namespaceResourceWhitelist" in project:
        problems.append("namespaceResourceWhitelist replaces the deny list")
    return problems


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_the_root_application_runs_in_its_restricted_project(stacks, environments, env_name):
    apps = release_values(stacks[f"{env_name}-platform"], "argocd-apps")
    assert apps["applications"]["platform-root"]["project"] != "default"
    assert project_problems(apps, source_repositories(environments[env_name])) == []
    assert environments[env_name].platform.gitops.repository_url in apps["projects"][ROOT_PROJECT]["sourceRepos"]


@pytest.mark.parametrize(("defect", "finding"), [
    (lambda a: a["applications"]["platform-root"].update(project="default"), "which this release does not restrict"),
    (lambda a: a["projects"]["platform"].update(sourceRepos=["*"]), "sourceRepos ['*']"),
    (lambda a: a["projects"]["platform"]["destinations"].append({"server": "*", "namespace": "*"}), "destination"),
    (lambda a: a["projects"]["platform"]["destinations"].append({"server": IN_CLUSTER, "namespace": "kube-system"}),
     "destination"),
    (lambda a: a["projects"]["platform"].update(clusterResourceWhitelist=[{"group": "*", "kind": "*"}]),
     "cluster-scoped"),
    (lambda a: a["projects"]["platform"]["namespaceResourceBlacklist"].pop(), "not denied"),
])
def test_the_check_finds_a_widened_project(stacks, environments, defect, finding):
    apps = copy.deepcopy(release_values(stacks["prod-platform"], "argocd-apps"))
    defect(apps)
    assert any(finding in p for p in project_problems(apps, source_repositories(environments["prod"])))


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_the_local_admin_is_off_and_sign_in_is_the_environments_sso(stacks, environments, env_name):
    configs = release_values(stacks[f"{env_name}-platform"], "argo-cd")["configs"]
    assert configs["cm"]["admin.enabled"] is False
    assert configs["rbac"]["policy.default"] == ""  # signed in but in no listed group: nothing
    sso = environments[env_name].platform.gitops.sso
    if sso is None:
        assert "oidc.config" not in configs["cm"] and "dex.config" not in configs["cm"]
        return
    oidc = yaml.safe_load(configs["cm"]["oidc.config"])
    assert (oidc["issuer"], oidc["clientID"]) == (sso.issuer, sso.client_id)
    assert "clientSecret" not in oidc and oidc["enablePKCEAuthentication"] is True
    assert configs["cm"]["url"] == sso.url
    grants = [line.split(", ") for line in configs["rbac"]["policy.csv"].splitlines()]
    assert {g for _, g, role in grants if role == "role:admin"} == set(sso.admin_groups)
    assert {g for _, g, role in grants if role == "role:readonly"} == set(sso.readonly_groups)
    assert {role for _, _, role in grants} <= {"role:admin", "role:readonly"}


def test_prod_tier_environments_have_sso(environments):
    assert all(e.platform.gitops.sso for e in environments.values() if e.tier.value == "prod")


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_application_the_platform_declares_runs_in_the_restricted_project(stacks, env_name):
    found = []
    for layer in ("platform", "workloads"):
        for release in resources(stacks.get(f"{env_name}-{layer}", {}), "helm_release").values():
            for text in release.get("values", []):
                for value in (yaml.safe_load(text) or {}).values():
                    if isinstance(value, list):
                        found += [m for m in value if isinstance(m, dict) and m.get("kind") == "Application"]
    assert found, "the check would pass on no Application"
    assert {m["metadata"]["name"]: m["spec"]["project"] for m in found} == {
        m["metadata"]["name"]: ROOT_PROJECT for m in found}
    for application in found:
        assert application["spec"]["destination"]["namespace"] in destination_namespaces()
