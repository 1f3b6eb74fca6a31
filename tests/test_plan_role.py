"""Pull requests never see prod secrets: who may assume the plan role, what it reads, and the state key.

- The plan role of a dev-tier environment trusts pull requests; every other plan role trusts only jobs of the
  protected GitHub environment ``plan-<env>`` (required reviewers), and the plan workflow runs those plans there.
- The plan role reads exactly what ``terraform plan`` of our resource types reads (platform_config/data/
  plan_role_reads.yaml): no managed policy, no wildcard, no action that hands out data.
- Every stack's state is encrypted with the environment's customer-managed key, and the key policy lets only that
  environment's deploy and plan roles use it.
"""

from __future__ import annotations

import copy
import json
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
import yaml

from platform_config.github_oidc import parse_subject
from platform_config.models import Tier
from platform_config.plan_reads import plan_reads
from tests_support import resources
from tools.synth_diff.pipeline import (
    STATE_KEY_USE_ACTIONS,
    plan_github_environments,
    plan_matrix,
    state_key_policy,
)

OIDC_SUB = "token.actions.githubusercontent.com:sub"
PLAN_WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "plan.yml"


def delivery_stacks(stacks: dict) -> dict[str, dict]:
    return {name.removesuffix("-delivery"): stack for name, stack in stacks.items() if name.endswith("-delivery")}


def plan_role(stack: dict) -> tuple[str, dict]:
    [(address, role)] = [(a, r) for a, r in resources(stack, "aws_iam_role").items()
                         if r["tags"].get("github-actions-role") == "plan"]
    return address, role


def role_statements(stack: dict, address: str) -> list[dict]:
    return [s for p in resources(stack, "aws_iam_role_policy").values()
            if p["role"] == f"${{aws_iam_role.{address}.id}}" for s in json.loads(p["policy"])["Statement"]]


def managed_policies(stack: dict, address: str) -> list[str]:
    return [a["policy_arn"] for a in resources(stack, "aws_iam_role_policy_attachment").values()
            if a["role"] == f"${{aws_iam_role.{address}.name}}"]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def trusted_subjects(role: dict) -> list[str]:
    return [subject for statement in json.loads(role["assume_role_policy"])["Statement"]
            for condition in statement["Condition"].values() for key, values in condition.items()
            if key == OIDC_SUB for subject in as_list(values)]


def broad_grants(stack: dict, address: str) -> list[str]:
    """What makes a plan role more than a reader of our configuration: managed policies, wildcard actions, and
    actions on ``*`` that hand out data."""
    found = [f"managed policy {arn}" for arn in managed_policies(stack, address)]
    for statement in role_statements(stack, address):
        if statement["Effect"] != "Allow":
            continue
        for action in as_list(statement.get("Action", [])):
            if "*" in action or "?" in action:
                found.append(f"wildcard action {action}")
            if "*" in as_list(statement["Resource"]):
                found += [f"{action} on * reads data ({d})" for d in plan_reads().data_reading(action)]
        if "NotAction" in statement:
            found.append(f"NotAction {statement['NotAction']}")
    return found


# --- who may assume it ----------------------------------------------------------------------------------------

def test_plan_roles_beyond_dev_trust_only_their_protected_github_environment(stacks, environments):
    for env, stack in delivery_stacks(stacks).items():
        _, role = plan_role(stack)
        repository = environments[env].delivery.github_repository
        expected = "pull_request" if environments[env].tier is Tier.DEV else f"environment:plan-{env}"
        [subject] = [parse_subject(s) for s in trusted_subjects(role)]
        assert subject is not None, env
        assert (subject.repository, subject.context, subject.ref, subject.workflow) == (
            repository, expected, "refs/pull/*/merge", "plan.yml"), env


def test_the_workflow_finds_the_github_environment_the_plan_role_trusts(synth_outdir, environments):
    found = plan_github_environments(synth_outdir, list(environments))
    assert found == {env: e.plan_github_environment for env, e in environments.items() if e.delivery}
    assert all(found[env] for env, e in environments.items() if e.delivery and e.tier is not Tier.DEV)


def test_plans_of_environments_behind_reviewers_leave_the_automatic_matrix(synth_outdir, environments):
    manifest = json.loads((synth_outdir / "manifest.json").read_text())["stacks"]
    changed = sorted(manifest)
    plan_environments = plan_github_environments(synth_outdir, list(environments))
    automatic = plan_matrix(changed, manifest, list(environments), plan_environments, approval="none")
    protected = plan_matrix(changed, manifest, list(environments), plan_environments, approval="required")
    assert {i["environment"] for i in automatic["include"]} == {
        env for env, e in environments.items() if not e.plan_github_environment}
    assert {(i["environment"], i["github_environment"]) for i in protected["include"]} == {
        (env, f"plan-{env}") for env, e in environments.items() if e.plan_github_environment}


def test_protected_plans_run_in_their_github_environment_with_the_same_steps():
    jobs = yaml.safe_load(PLAN_WORKFLOW.read_text())["jobs"]
    assert "environment" not in jobs["plan"]
    assert jobs["plan"]["strategy"]["matrix"] == "${{ fromJSON(needs.synth.outputs.matrix) }}"
    assert jobs["plan-protected"]["environment"] == {"name": "${{ matrix.github_environment }}"}
    assert jobs["plan-protected"]["strategy"]["matrix"] == "${{ fromJSON(needs.synth.outputs.protected_matrix) }}"
    assert jobs["plan-protected"]["steps"] == jobs["plan"]["steps"]
    assert "plan-protected" in jobs["report"]["needs"]


# --- what it reads --------------------------------------------------------------------------------------------

def test_every_resource_type_and_data_source_of_the_stacks_has_its_plan_reads_listed(stacks, stack_environments):
    """Of the environments' stacks: the github stack reads GitHub with a token, not AWS with the plan role."""
    table = plan_reads()
    types = {t for name in stack_environments for t in stacks[name].get("resource", {})}
    sources = {t for name in stack_environments for t in stacks[name].get("data", {})}
    assert sorted(types - table.resource_types.keys()) == []
    assert sorted(sources - table.data_sources.keys()) == []


def test_the_plan_role_reads_exactly_the_listed_actions_and_nothing_broad(stacks):
    for env, stack in delivery_stacks(stacks).items():
        address, _ = plan_role(stack)
        statements = {s["Sid"]: s for s in role_statements(stack, address)}
        assert statements["ReadWhatPlansRefresh"]["Action"] == plan_reads().actions(), env
        assert broad_grants(stack, address) == [], env


@pytest.mark.parametrize(("defect", "finding"), [
    ("ReadOnlyAccess", "managed policy arn:aws:iam::aws:policy/ReadOnlyAccess"),
    ("s3:Get*", "s3:Get* on * reads data (s3:GetObject)"),
    ("*:*", "wildcard action *:*"),
    ("secretsmanager:GetSecretValue", "secretsmanager:GetSecretValue on * reads data"),
])
def test_the_check_finds_a_plan_role_widened_again(stacks, defect, finding):
    env, stack = next(iter(delivery_stacks(stacks).items()))
    stack = copy.deepcopy(stack)
    address, _ = plan_role(stack)
    if defect == "ReadOnlyAccess":
        stack["resource"].setdefault("aws_iam_role_policy_attachment", {})["widened"] = {
            "role": f"${{aws_iam_role.{address}.name}}", "policy_arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}
    else:
        for policy in resources(stack, "aws_iam_role_policy").values():
            if policy["role"] == f"${{aws_iam_role.{address}.id}}":
                document = json.loads(policy["policy"])
                document["Statement"].append({"Effect": "Allow", "Action": [defect], "Resource": "*"})
                policy["policy"] = json.dumps(document)
                break
    assert any(f.startswith(finding) for f in broad_grants(stack, address)), env


def test_the_table_lists_exact_actions_and_no_data_action():
    table = plan_reads()
    assert [a for a in table.actions() if table.data_reading(a)] == []
    with pytest.raises(ValueError, match="must be one exact action"):
        type(table).model_validate({"resource_types": {"aws_s3_bucket": ["s3:Get*"]}, "data_sources": {},
                                    "data_actions": []})


# --- the state and its key ------------------------------------------------------------------------------------

def test_every_stack_keeps_its_state_encrypted_with_its_environments_key(stacks, stack_environments, environments):
    from platform_config.github_settings import GITHUB_STACK, github_settings

    owners = {**stack_environments, GITHUB_STACK: github_settings(list(environments.values())).state_environment}
    assert set(owners) == set(stacks)
    for name, stack in stacks.items():
        env = owners[name]
        backend = stack["terraform"]["backend"]["s3"]
        assert backend["kms_key_id"] == env.state_backend.kms_key_arn, name
        assert backend["encrypt"] is True, name


def test_the_plan_role_decrypts_the_state_key_and_reads_only_its_state(stacks, environments):
    for env, stack in delivery_stacks(stacks).items():
        address, _ = plan_role(stack)
        statements = {s["Sid"]: s for s in role_statements(stack, address)}
        key = environments[env].state_backend.kms_key_arn
        assert statements["UseTheStateKey"]["Resource"] == key
        assert set(statements["UseTheStateKey"]["Action"]) == {"kms:Decrypt", "kms:DescribeKey"}
        backend = environments[env].state_backend
        assert statements["ReadTheState"]["Resource"] == \
            f"arn:aws:s3:::{backend.bucket}/{backend.key_prefix}/{env}/*"


def key_users(policy: dict, principal: str, *, via: str) -> bool:
    """Whether ``principal`` may decrypt with the key under ``policy`` through service ``via`` (the statements
    with their ArnEquals/StringEquals conditions, as KMS evaluates them; no Deny statements are used)."""
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow" or not any(fnmatchcase("kms:Decrypt", a)
                                                     for a in as_list(statement["Action"])):
            continue
        condition = statement.get("Condition", {})
        arns = as_list(condition.get("ArnEquals", {}).get("aws:PrincipalArn", principal))
        services = as_list(condition.get("StringEquals", {}).get("kms:ViaService", via))
        named = as_list(statement["Principal"]["AWS"])
        account_root = f"arn:aws:iam::{principal.split(':')[4]}:root"
        if (principal in named or account_root in named) and principal in arns and via in services:
            return True
    return False


def test_only_the_environments_deploy_and_plan_roles_use_the_state_key(synth_outdir, environments):
    for env, settings in environments.items():
        if not settings.delivery:
            continue
        region = settings.state_backend.region
        admins = [a.arn for a in settings.cluster.admin_principals]
        policy = state_key_policy(synth_outdir, env, list(environments), region=region, admin_arns=admins)
        account = settings.account_id
        roles = {f"arn:aws:iam::{account}:role/mlops-platform-github-plan",
                 f"arn:aws:iam::{account}:role/mlops-platform-github-deploy-{env}"}
        s3 = f"s3.{region}.amazonaws.com"
        candidates = roles | set(admins) | {f"arn:aws:iam::{account}:role/mlops-platform-github-image-push",
                                            f"arn:aws:iam::{account}:role/Someone"}
        assert {p for p in candidates if key_users(policy, p, via=s3)} == roles, env
        assert not any(key_users(policy, p, via=f"ec2.{region}.amazonaws.com") for p in roles), env
        use = next(s for s in policy["Statement"] if "kms:Decrypt" in s["Action"])
        assert sorted(use["Action"]) == sorted(STATE_KEY_USE_ACTIONS)


def test_the_bootstrap_principal_uses_the_key_only_when_named(synth_outdir, environments):
    env, settings = next((n, e) for n, e in environments.items() if e.delivery)
    admin = settings.cluster.admin_principals[0].arn
    args = (synth_outdir, env, list(environments))
    s3 = f"s3.{settings.state_backend.region}.amazonaws.com"
    with_bootstrap = state_key_policy(*args, region=settings.state_backend.region, admin_arns=[admin],
                                      bootstrap_principal=admin)
    without = state_key_policy(*args, region=settings.state_backend.region, admin_arns=[admin])
    assert key_users(with_bootstrap, admin, via=s3) and not key_users(without, admin, via=s3)
