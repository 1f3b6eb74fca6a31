"""The ``github`` stack: the repository's GitHub environments, their reviewers and deployment branches, the
protected branches and the OIDC subject template, as GitHub applies them; and the workflows that rely on them.

GIVEN the session's synth of every environment file, THEN the synthesized settings follow the rules GitHub and the
roles of the delivery stacks apply, for any valid set of environment files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from platform_config.github_oidc import parse_subject
from platform_config.github_settings import (
    GITHUB_STACK,
    GithubSettingsError,
    github_settings,
    missing_state_environment,
    workflow_events,
    workflow_jobs,
)
from platform_config.models import Tier
from tests_support import resources
from tools.synth_diff.pipeline import plan_github_environments

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
SETTINGS_FILE = REPO_ROOT / "platform_config" / "data" / "github.yaml"


@pytest.fixture(scope="module")
def github(stacks) -> dict:
    return stacks[GITHUB_STACK]


def delivering(environments):
    return {name: env for name, env in environments.items() if env.delivery is not None}


def github_environments(github: dict) -> dict[str, dict]:
    return {body["environment"]: body for body in resources(github, "github_repository_environment").values()}


def deployment_branches(github: dict, environment: str) -> set[str]:
    """Branch patterns of the environment's deployment policies (their ``environment`` references it)."""
    [address] = [a for a, b in resources(github, "github_repository_environment").items()
                 if b["environment"] == environment]
    reference = f"${{github_repository_environment.{address}.environment}}"
    return {p["branch_pattern"] for p in resources(github, "github_repository_environment_deployment_policy").values()
            if p["environment"] == reference}


def reviewer_teams(body: dict) -> list[str]:
    return [team for reviewers in body.get("reviewers") or [] for team in reviewers.get("teams") or []]


# --- the environments ----------------------------------------------------------------------------------------

def test_each_delivering_environment_has_its_deploy_and_image_environments_and_beyond_dev_its_plan_one(
        github, environments):
    expected = set()
    for name, env in delivering(environments).items():
        expected |= {*(env.delivery.deploy_environments or [name]), f"images-{name}"}
        if env.tier is not Tier.DEV:
            expected.add(f"plan-{name}")
    assert set(github_environments(github)) == expected


def test_prod_tier_jobs_wait_for_reviewers_and_dev_tier_jobs_start_at_once(github, environments):
    """GitHub starts a job in an environment without reviewers at once: prod's deploys, plans and image pushes
    must name some, and nobody approves their own run, administrators included."""
    found = github_environments(github)
    for name, env in delivering(environments).items():
        deploys = env.delivery.deploy_environments or [name]
        plans = [f"plan-{name}"] if env.tier is not Tier.DEV else []
        if env.tier is Tier.PROD:
            for github_environment in [*deploys, *plans, f"images-{name}"]:
                body = found[github_environment]
                assert reviewer_teams(body), github_environment
                assert body["prevent_self_review"] is True and body["can_admins_bypass"] is False, github_environment
        if env.tier is Tier.DEV:
            for github_environment in [*deploys, f"images-{name}"]:
                assert not reviewer_teams(found[github_environment]), github_environment


def test_reviewers_are_teams_looked_up_by_slug(github):
    teams = {f"${{data.github_team.{address}.id}}" for address in github.get("data", {}).get("github_team", {})}
    named = {team for body in github_environments(github).values() for team in reviewer_teams(body)}
    assert named and named <= teams
    assert len(max((reviewer_teams(b) for b in github_environments(github).values()), key=len)) <= 6


def test_deploy_and_image_environments_run_only_from_main_and_plan_environments_from_pull_requests(
        github, environments):
    found = github_environments(github)
    for name, env in delivering(environments).items():
        for github_environment in [*(env.delivery.deploy_environments or [name]), f"images-{name}"]:
            # custom policies only: "protected branches" would admit any branch someone protects later
            assert found[github_environment]["deployment_branch_policy"] == {
                "protected_branches": False, "custom_branch_policies": True}, github_environment
            assert deployment_branches(github, github_environment) == {"main"}, github_environment
        if env.tier is not Tier.DEV:
            # a pull request's jobs run from refs/pull/<n>/merge, which no branch policy admits
            assert "deployment_branch_policy" not in found[f"plan-{name}"]
            assert deployment_branches(github, f"plan-{name}") == set()


# --- the workflows use exactly these environments --------------------------------------------------------------

_EXPRESSION = re.compile(r"^(?P<prefix>[^$]*)\$\{\{(?P<expression>[^}]*)\}\}(?P<suffix>[^$]*)$")
#: A literal a GitHub expression can evaluate to: the operand after && or ||.
_RESULT_LITERAL = re.compile(r"(?:&&|\|\|)\s*'([^']*)'")


def dispatch_choices(workflow: Path) -> set[str]:
    document = yaml.safe_load(workflow.read_text())
    events = document.get("on", document.get(True)) or {}
    inputs = ((events.get("workflow_dispatch") or {}).get("inputs") or {}) if isinstance(events, dict) else {}
    return set((inputs.get("environment") or {}).get("options") or [])


def environment_names(workflow: Path, job: dict, plan_environments: set[str]) -> set[str]:
    """Every name the job's ``environment`` can take: the dispatch choices, the literals of the expression, and
    the plan matrix's GitHub environments (the plan roles' trusted environments)."""
    environment = job.get("environment")
    if environment is None:
        return set()
    name = environment["name"] if isinstance(environment, dict) else environment
    match = _EXPRESSION.match(name)
    if match is None:
        return {name}
    expression, values = match["expression"], set(_RESULT_LITERAL.findall(match["expression"]))
    if "inputs.environment" in expression:
        values |= dispatch_choices(workflow)
    if "matrix.github_environment" in expression:
        values |= plan_environments
    assert values, f"{workflow.name}: environment {name!r}: an expression this test cannot resolve"
    return {f"{match['prefix']}{value}{match['suffix']}" for value in values}


def test_every_environment_a_workflow_job_names_is_managed_and_every_managed_one_is_used(
        github, synth_outdir, environments):
    plans = {e for e in plan_github_environments(synth_outdir, list(environments)).values() if e}
    used: dict[str, set[str]] = {}
    for workflow in sorted(WORKFLOWS.glob("*.yml")):
        for job in workflow_jobs(workflow).values():
            for name in environment_names(workflow, job, plans):
                used.setdefault(name, set()).add(workflow.name)
    assert set(used) == set(github_environments(github))
    settings = github_settings(list(environments.values()))
    assert {g.name: {g.subject.workflow} for g in settings.environments} == used


def test_image_pushes_run_in_the_images_environment_of_their_registry():
    """The job that assumes the image-push role runs in images-<env>, the only jobs that role trusts: in a prod
    tier its reviewers approve every push into the registry."""
    workflow = WORKFLOWS / "images.yml"
    pushers = {job_id: job for job_id, job in workflow_jobs(workflow).items()
               if any(step.get("with", {}).get("role-to-assume") == "${{ needs.target.outputs.role }}"
                      for step in job.get("steps", []))}
    assert pushers, "no job assumes the image-push role"
    for job_id, job in pushers.items():
        names = environment_names(workflow, job, set())
        assert names == {f"images-{choice}" for choice in dispatch_choices(workflow)}, job_id


# --- the protected branches ------------------------------------------------------------------------------------

def pull_request_job_names() -> set[str]:
    return {str(job.get("name", job_id)) for workflow in WORKFLOWS.glob("*.yml")
            if "pull_request" in workflow_events(workflow)
            for job_id, job in workflow_jobs(workflow).items()}


def protections(github: dict) -> dict[tuple[str, str], dict]:
    return {(body["repository_id"], body["pattern"]): body
            for body in resources(github, "github_branch_protection").values()}


def assert_reviewed_and_not_rewritable(body: dict, where: str) -> None:
    [reviews] = body["required_pull_request_reviews"]
    assert reviews["required_approving_review_count"] >= 1 and reviews["dismiss_stale_reviews"] is True, where
    assert body["allows_force_pushes"] is False and body["allows_deletions"] is False, where
    assert body["enforce_admins"] is True, where


def test_main_requires_reviews_and_the_checks_of_jobs_that_run_on_every_pull_request(github, environments):
    repository = next(iter(delivering(environments).values())).delivery.github_repository.split("/")[1]
    main = protections(github)[(repository, "main")]
    assert_reviewed_and_not_rewritable(main, "main")
    [checks] = main["required_status_checks"]
    # a required check that no pull-request job reports would block every merge
    assert checks["contexts"] and set(checks["contexts"]) <= pull_request_job_names()
    assert not any("${{" in context for context in checks["contexts"])


def test_the_branch_prod_tier_argo_cd_follows_is_protected(github, environments):
    found = protections(github)
    for name, env in delivering(environments).items():
        if env.tier is Tier.PROD:
            gitops = env.platform.gitops
            assert_reviewed_and_not_rewritable(
                found[(gitops.github_repository.split("/")[1], gitops.revision)], f"{name}: {gitops.revision}")


# --- the OIDC subject template and the roles that trust it ------------------------------------------------------

def test_the_subject_template_names_the_ref_and_the_workflow_of_every_token(github, environments):
    [template] = resources(github, "github_actions_repository_oidc_subject_claim_customization_template").values()
    assert template["use_default"] is False
    assert {"repo", "context", "ref", "job_workflow_ref"} <= set(template["include_claim_keys"])
    repositories = {env.delivery.github_repository for env in delivering(environments).values()}
    assert {f"{github['provider']['github'][0]['owner']}/{template['repository']}"} == repositories


def test_every_github_role_trusts_subs_in_the_order_the_template_makes_them(github, stacks):
    """GitHub joins the template's claims as <key>:<value> in its order (``context`` without a key): a trust in
    another format never matches a token, and one without the ref or the workflow would match more jobs."""
    [template] = resources(github, "github_actions_repository_oidc_subject_claim_customization_template").values()
    parts = [r"(?:environment:[^:]+|pull_request|ref:[^:]+)" if key == "context" else rf"{key}:[^:]+"
             for key in template["include_claim_keys"]]
    form = re.compile("^" + ":".join(parts) + "$")
    checked = 0
    for name, stack in stacks.items():
        for role in resources(stack, "aws_iam_role").values():
            if "github-actions-role" not in (role.get("tags") or {}):
                continue
            for statement in json.loads(role["assume_role_policy"])["Statement"]:
                for condition in statement["Condition"].values():
                    values = condition.get("token.actions.githubusercontent.com:sub", [])
                    for value in values if isinstance(values, list) else [values]:
                        assert form.match(value), f"{name}: {value}"
                        checked += 1
    assert checked


def test_each_role_names_the_workflow_file_its_jobs_come_from_and_that_file_exists(stacks):
    for name, stack in stacks.items():
        for role in resources(stack, "aws_iam_role").values():
            for statement in json.loads(role["assume_role_policy"]).get("Statement", []):
                for condition in (statement.get("Condition") or {}).values():
                    values = condition.get("token.actions.githubusercontent.com:sub", [])
                    for value in values if isinstance(values, list) else [values]:
                        subject = parse_subject(value)
                        assert subject is not None, f"{name}: {value}"
                        assert (WORKFLOWS / subject.workflow).is_file(), f"{name}: {value}"


def test_the_provider_takes_its_token_from_the_environment_never_from_the_stack(github):
    [provider] = github["provider"]["github"]
    assert "token" not in provider and "app_auth" not in provider


# --- bad settings are refused, naming the file and field -------------------------------------------------------

def write_settings(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(SETTINGS_FILE.read_text())
    edit(data)
    path = tmp_path / "github.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: d["reviewers"].pop("prod"), "reviewers.prod: missing"),
    (lambda d: d["reviewers"].update(dev=["platform-engineering"]), "reviewers.dev: not allowed"),
    (lambda d: d["reviewers"].update(prod=[f"team-{i}" for i in range(7)]), "reviewers.prod"),
    (lambda d: d["main"].update(required_checks=["ci.yml:no-such-job"]), "ci.yml has no job 'no-such-job'"),
    (lambda d: d["main"].update(required_checks=["deploy.yml:aws-layers"]), "does not run on pull_request"),
    (lambda d: d["main"].update(required_checks=["plan.yml:plan"]), "is an expression"),
    (lambda d: d.update(extra=1), "extra"),
])
def test_bad_github_settings_are_refused_naming_the_file_and_field(tmp_path, environments, edit, expected):
    path = write_settings(tmp_path, edit)
    with pytest.raises(GithubSettingsError) as error:
        github_settings(list(environments.values()), settings_file=path)
    assert any(expected in problem and str(path) in problem for problem in error.value.problems), error.value


def test_environment_files_naming_different_repositories_are_refused(environments):
    envs = list(delivering(environments).values())
    other = envs[0].model_copy(update={"name": f"{envs[0].name}-other", "delivery": envs[0].delivery.model_copy(
        update={"github_repository": "another-org/mlops-platform"})})
    with pytest.raises(GithubSettingsError, match=r"delivery\.github_repository differs between files"):
        github_settings([*envs, other])


def test_environment_files_without_the_state_environment_get_no_github_stack_and_a_warning(tmp_path, environments):
    path = write_settings(tmp_path, lambda d: d.update(state_environment="not-a-file"))
    envs = list(environments.values())
    assert github_settings(envs, settings_file=path) is None
    warning = missing_state_environment(envs, settings_file=path)
    assert warning.startswith(f"{path}: state_environment: 'not-a-file' is not an environment file")
