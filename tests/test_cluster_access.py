"""Who reads what in the cluster: viewers (people and the plan role) never read a Secret.

The rules of the EKS access policies are data with their source (platform_config/data/eks_access_policies.yaml);
the tests evaluate the access entries of every synthesized cluster stack against them, the way the RBAC
authorizer matches a request (API group, resource, verb; ``*`` matches anything).
"""

import copy
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from platform_config.cluster_access import access_policy_table, policy_name, secret_read_paths
from tests_support import resources


def cluster_stacks(stacks: dict) -> dict[str, dict]:
    return {name.removesuffix("-cluster"): stack for name, stack in stacks.items() if name.endswith("-cluster")}


def viewer_access(stack: dict, viewer_arns: set[str]) -> dict[str, dict]:
    """Viewer principal -> its access entry's Kubernetes groups and the names of its associated access policies."""
    entries = {f"${{aws_eks_access_entry.{address}.principal_arn}}": entry
               for address, entry in resources(stack, "aws_eks_access_entry").items()
               if entry["principal_arn"] in viewer_arns}
    access = {entry["principal_arn"]: {"groups": entry.get("kubernetes_groups") or [], "policies": []}
              for entry in entries.values()}
    for association in resources(stack, "aws_eks_access_policy_association").values():
        entry = entries.get(association["principal_arn"])
        if entry is not None:
            access[entry["principal_arn"]]["policies"].append(policy_name(association["policy_arn"]))
    return access


def secret_readers(stack: dict, viewer_arns: set[str]) -> dict[str, list[str]]:
    """Viewer principal -> how it could read a Secret (empty dict: no viewer can)."""
    found = {}
    for principal, access in viewer_access(stack, viewer_arns).items():
        paths = secret_read_paths(access["policies"])
        if access["groups"]:
            # Groups bind whatever RBAC the cluster holds for them: nothing here can show those omit Secrets.
            paths.append(f"kubernetes_groups {access['groups']} bind RBAC this check cannot see")
        if paths:
            found[principal] = paths
    return found


def test_every_viewer_has_an_access_entry_with_a_policy(stacks, environments):
    for env, stack in cluster_stacks(stacks).items():
        viewers = {v.arn for v in environments[env].cluster.viewer_principals}
        access = viewer_access(stack, viewers)
        assert set(access) == viewers, env
        assert all(a["policies"] for a in access.values()), env


def test_no_viewer_principal_can_read_a_secret(stacks, environments):
    for env, stack in cluster_stacks(stacks).items():
        viewers = {v.arn for v in environments[env].cluster.viewer_principals}
        assert secret_readers(stack, viewers) == {}, env


@pytest.mark.parametrize("defect", ["AmazonEKSAdminViewPolicy", "AmazonEKSSecretReaderPolicy",
                                    "AmazonEKSEditPolicy", "AmazonEKSNewPolicy"])
def test_the_check_finds_a_viewer_given_a_policy_that_reads_secrets(stacks, environments, defect):
    env = next(env for env in cluster_stacks(stacks) if environments[env].cluster.viewer_principals)
    stack = copy.deepcopy(stacks[f"{env}-cluster"])
    viewers = {v.arn for v in environments[env].cluster.viewer_principals}
    viewer_entries = {f"${{aws_eks_access_entry.{address}.principal_arn}}"
                      for address, entry in resources(stack, "aws_eks_access_entry").items()
                      if entry["principal_arn"] in viewers}
    for association in resources(stack, "aws_eks_access_policy_association").values():
        if association["principal_arn"] in viewer_entries:
            association["policy_arn"] = f"arn:aws:eks::aws:cluster-access-policy/{defect}"
    assert set(secret_readers(stack, viewers)) == viewers


def test_the_check_finds_a_viewer_bound_to_kubernetes_groups(stacks, environments):
    env = next(env for env in cluster_stacks(stacks) if environments[env].cluster.viewer_principals)
    stack = copy.deepcopy(stacks[f"{env}-cluster"])
    viewers = {v.arn for v in environments[env].cluster.viewer_principals}
    for entry in resources(stack, "aws_eks_access_entry").values():
        if entry["principal_arn"] in viewers:
            entry["kubernetes_groups"] = ["secret-readers"]
    assert set(secret_readers(stack, viewers)) == viewers


@pytest.mark.parametrize(("policy", "reads"), [
    # As the EKS user guide describes them: the admin view and the editing policies reach Secrets, the view
    # policy does not.
    ("AmazonEKSClusterAdminPolicy", True), ("AmazonEKSAdminViewPolicy", True), ("AmazonEKSAdminPolicy", True),
    ("AmazonEKSEditPolicy", True), ("AmazonEKSSecretReaderPolicy", True), ("AmazonEKSViewPolicy", False),
])
def test_the_table_matches_what_the_user_guide_says_about_secrets(policy, reads):
    assert bool(secret_read_paths([policy])) is reads


def test_indirect_paths_count_creating_pods_exec_and_impersonation():
    paths = secret_read_paths(["AmazonEKSEditPolicy"])
    assert any("create pods " in p for p in paths)
    assert any("pods/exec" in p for p in paths)
    assert any("impersonate serviceaccounts" in p for p in paths)


def test_every_rule_of_the_table_names_groups_resources_and_verbs():
    for name, policy in access_policy_table().policies.items():
        assert policy.rules, name
        assert all(rule.api_groups and rule.resources and rule.verbs for rule in policy.rules), name


# --- the consequence for pull-request plans: a viewer cannot read Helm's release records (Secrets) -------------

PLAN_WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "plan.yml"


def plan_script() -> str:
    document = yaml.safe_load(PLAN_WORKFLOW.read_text())
    return next(step["run"] for step in document["jobs"]["plan"]["steps"] if "terraform" in step.get("run", "")
                and " plan " in step["run"])


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed (GitHub runners have it)")
def test_plans_of_stacks_with_in_cluster_providers_do_not_refresh(synth_outdir, stacks):
    script = plan_script()
    assert re.search(r'terraform -chdir="\$dir" plan [^\n]*-refresh="\$refresh"', script)
    condition = re.search(r"jq -e '([^']+)' \"\$dir/cdk\.tf\.json\"", script)
    assert condition, "the plan step decides the refresh from the stack's providers"
    for name, stack in stacks.items():
        in_cluster = bool({"helm", "kubernetes"} & set(stack.get("provider", {})))
        path = synth_outdir / "stacks" / name / "cdk.tf.json"
        skips_refresh = subprocess.run(["jq", "-e", condition.group(1), str(path)], capture_output=True).returncode == 0
        assert skips_refresh is in_cluster, name
    assert any({"helm", "kubernetes"} & set(s.get("provider", {})) for s in stacks.values())
