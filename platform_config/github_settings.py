"""The GitHub settings the ``github`` stack manages, derived in one place from the environment files and
``platform_config/data/github.yaml``: the repository's GitHub environments with their reviewers and deployment
branches, the OIDC subject template, and the protected branches.

GitHub environments, per environment file with ``delivery`` (the workflows name them; a test keeps both equal):

- ``<env>`` (deploy.yml, ``deploy``): from main only; reviewers beyond the dev tier. Its deploy role trusts only it.
- ``plan-<env>`` (plan.yml, ``plan``): only beyond the dev tier, always with reviewers; any branch, because a pull
  request's jobs run from its merge ref. Its plan role trusts only it.
- ``images-<env>`` (images.yml, ``images``): from main only; reviewers in the prod tier, so a push into a
  prod-tier registry waits for approval. The account's image-push role trusts only it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from platform_config.github_oidc import GITHUB_ENVIRONMENT_NAME, MAIN_REF, PULL_REQUEST_REF, WorkflowSubject
from platform_config.models import Environment, Tier

GITHUB_SETTINGS_FILE = Path(__file__).with_name("data") / "github.yaml"
WORKFLOWS_FOLDER = Path(__file__).resolve().parent.parent / ".github" / "workflows"
#: The one stack of the repository's settings (not per environment: one repository serves every environment).
GITHUB_STACK = "github"
#: GitHub accepts at most this many reviewers (users or teams) on an environment.
MAX_REVIEWERS = 6
MAIN_BRANCH = "main"


class GithubEnvironmentKind(StrEnum):
    """What the jobs of a GitHub environment do; each kind comes from one workflow."""

    DEPLOY = "deploy"
    PLAN = "plan"
    IMAGES = "images"


#: The workflow whose jobs run in each kind of GitHub environment.
WORKFLOW_OF = {GithubEnvironmentKind.DEPLOY: "deploy.yml", GithubEnvironmentKind.PLAN: "plan.yml",
               GithubEnvironmentKind.IMAGES: "images.yml"}


class GithubSettingsError(ValueError):
    """github.yaml or the environment files cannot give the GitHub settings; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_JOB_REF = r"^[A-Za-z0-9._-]+\.ya?ml:[A-Za-z0-9_-]+$"


class MainProtection(_Frozen):
    required_checks: Annotated[list[Annotated[str, Field(pattern=_JOB_REF)]], Field(min_length=1)]
    required_approvals: Annotated[int, Field(ge=1, le=6)]


class ReleaseProtection(_Frozen):
    required_approvals: Annotated[int, Field(ge=1, le=6)]


class GithubFile(_Frozen):
    reviewers: dict[Tier, Annotated[list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]],
                                    Field(min_length=1, max_length=MAX_REVIEWERS)]]
    main: MainProtection
    release: ReleaseProtection
    state_environment: Annotated[str, Field(min_length=1)]


@dataclass(frozen=True)
class GithubEnvironment:
    """One GitHub environment of the repository."""

    name: str
    kind: GithubEnvironmentKind
    #: The environment file whose jobs run in it.
    platform_environment: str
    #: Team slugs whose approval its jobs wait for; empty: its jobs start at once.
    reviewer_teams: tuple[str, ...]
    #: Branches its jobs may run from; empty: any (pull requests run from their merge refs).
    deployment_branches: tuple[str, ...]

    @property
    def subject(self) -> WorkflowSubject:
        """The token ``sub`` of its jobs (what the role of this environment trusts)."""
        ref = PULL_REQUEST_REF if self.kind is GithubEnvironmentKind.PLAN else MAIN_REF
        return WorkflowSubject(workflow=WORKFLOW_OF[self.kind], ref=ref, environment=self.name)


@dataclass(frozen=True)
class BranchProtectionSettings:
    """A protected branch of a repository of the owner."""

    repository: str
    branch: str
    required_approvals: int
    #: Check names (workflow job names) that must pass; empty where the repository's checks are not ours.
    required_checks: tuple[str, ...]


@dataclass(frozen=True)
class GithubSettings:
    repository: str
    environments: tuple[GithubEnvironment, ...]
    branch_protections: tuple[BranchProtectionSettings, ...]
    #: The environment whose state bucket and key keep the stack's state.
    state_environment: Environment

    @property
    def owner(self) -> str:
        return self.repository.split("/")[0]

    @property
    def repository_name(self) -> str:
        return self.repository.split("/")[1]


def deploy_environment_name(environment: Environment) -> str:
    return environment.name


def images_environment_name(environment: Environment) -> str:
    return f"images-{environment.name}"


def plan_subject(environment: Environment) -> WorkflowSubject:
    """The jobs that plan ``environment`` from a pull request: in ``plan-<env>`` beyond the dev tier, else
    straight from the pull request."""
    return WorkflowSubject(workflow=WORKFLOW_OF[GithubEnvironmentKind.PLAN], ref=PULL_REQUEST_REF,
                           environment=environment.plan_github_environment)


def github_environments(environment: Environment, reviewers: dict[Tier, list[str]]) -> list[GithubEnvironment]:
    """The GitHub environments of one environment file (none without ``delivery``), with the tier's reviewers
    on those that wait for approval."""
    if environment.delivery is None:
        return []
    kinds = [(name, GithubEnvironmentKind.DEPLOY)
             for name in environment.delivery.deploy_environments or [deploy_environment_name(environment)]]
    if environment.plan_github_environment is not None:
        kinds.append((environment.plan_github_environment, GithubEnvironmentKind.PLAN))
    kinds.append((images_environment_name(environment), GithubEnvironmentKind.IMAGES))
    teams = tuple(reviewers.get(environment.tier, ()))
    return [GithubEnvironment(name=name, kind=kind, platform_environment=environment.name,
                              reviewer_teams=teams if needs_approval(kind, environment.tier) else (),
                              deployment_branches=() if kind is GithubEnvironmentKind.PLAN else (MAIN_BRANCH,))
            for name, kind in kinds]


def needs_approval(kind: GithubEnvironmentKind, tier: Tier) -> bool:
    """Whether jobs of this kind of GitHub environment wait for reviewers in an environment of ``tier``."""
    if kind is GithubEnvironmentKind.IMAGES:
        return tier is Tier.PROD
    return tier is not Tier.DEV


def missing_state_environment(environments: Sequence[Environment], *,
                              settings_file: Path = GITHUB_SETTINGS_FILE) -> str | None:
    """Why environment files that deliver from GitHub get no github stack: github.yaml's ``state_environment``
    is none of them (its state would have no bucket); None when that is not the case."""
    if not any(environment.delivery is not None for environment in environments):
        return None
    state_environment = _read(settings_file).state_environment
    names = [environment.name for environment in environments]
    if state_environment in names:
        return None
    return (f"{_display(settings_file)}: state_environment: {state_environment!r} is not an environment file "
            f"({', '.join(names)}): no github stack is made, so the repository's GitHub settings are not managed")


def github_stack_expected(environments: Sequence[Environment]) -> bool:
    """Whether a synth of every file of ``environments`` makes the github stack (the gate expects it then)."""
    if not any(environment.delivery is not None for environment in environments):
        return False
    try:
        return missing_state_environment(environments) is None
    except GithubSettingsError:
        return True  # an unreadable github.yaml stops the synth; the gate reports the stack missing


def github_settings(environments: Sequence[Environment], *, settings_file: Path = GITHUB_SETTINGS_FILE,
                    workflows: Path = WORKFLOWS_FOLDER) -> GithubSettings | None:
    """The settings for ``environments``, every environment file (the stack holds the GitHub environments of
    all of them), or None when none has ``delivery`` (no repository to manage) or none is the state environment
    (``missing_state_environment``); GithubSettingsError naming the file and field of each problem."""
    delivering = [e for e in environments if e.delivery is not None]
    if not delivering:
        return None
    where = _display(settings_file)
    data = _read(settings_file)
    if missing_state_environment(environments, settings_file=settings_file):
        return None
    problems: list[str] = []
    repositories = sorted({e.delivery.github_repository for e in delivering})  # type: ignore[union-attr]
    if len(repositories) > 1:
        problems.append(f"environments/*.yaml: delivery.github_repository differs between files "
                        f"({', '.join(repositories)}): one repository's workflows deliver every environment, so "
                        "every file names the same one")
    repository = repositories[0]
    for tier in sorted({e.tier for e in delivering}, key=list(Tier).index):
        if any(needs_approval(kind, tier) for kind in GithubEnvironmentKind) and not data.reviewers.get(tier):
            problems.append(f"{where}: reviewers.{tier}: missing: environments of tier {tier} have GitHub "
                            "environments that wait for approval; name 1-6 team slugs")
    if Tier.DEV in data.reviewers:
        problems.append(f"{where}: reviewers.dev: not allowed: dev-tier environments run without approval")
    environments_found = [g for e in delivering for g in github_environments(e, data.reviewers)]
    names = [g.name for g in environments_found]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"environments/*.yaml: GitHub environment {name!r} is derived twice (delivery."
                        "deploy_environments or environment names collide)")
    for name in names:
        if not GITHUB_ENVIRONMENT_NAME.match(name):
            problems.append(f"environments/*.yaml: {name!r} is not a GitHub environment name")
    checks, check_problems = _required_checks(data.main.required_checks, workflows, f"{where}: main.required_checks")
    problems += check_problems
    protections = [BranchProtectionSettings(repository=repository, branch=MAIN_BRANCH,
                                            required_approvals=data.main.required_approvals,
                                            required_checks=tuple(checks))]
    owner = repository.split("/")[0]
    for environment in delivering:
        gitops = environment.platform.gitops
        if environment.tier is not Tier.PROD or gitops.github_repository is None:
            continue
        if gitops.github_repository.split("/")[0] != owner:
            problems.append(f"environments/{environment.name}.yaml: platform.gitops.repository_url: "
                            f"{gitops.github_repository} is not of {owner}, the owner the github stack manages; "
                            "protect its revision there")
            continue
        protection = BranchProtectionSettings(repository=gitops.github_repository, branch=gitops.revision,
                                              required_approvals=data.release.required_approvals,
                                              required_checks=())
        if (protection.repository, protection.branch) not in {(p.repository, p.branch) for p in protections}:
            protections.append(protection)
    state = {e.name: e for e in environments}.get(data.state_environment)
    if problems:
        raise GithubSettingsError(problems)
    return GithubSettings(repository=repository, environments=tuple(environments_found),
                          branch_protections=tuple(protections), state_environment=state)  # type: ignore[arg-type]


@cache
def _read_cached(path: Path, mtime: float) -> GithubFile:
    with path.open(encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    try:
        return GithubFile.model_validate(raw)
    except ValidationError as error:
        raise GithubSettingsError([f"{_display(path)}: {'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
                                   for e in error.errors()]) from None


def _read(path: Path) -> GithubFile:
    try:
        return _read_cached(path, path.stat().st_mtime)
    except OSError as error:
        raise GithubSettingsError([f"{_display(path)}: cannot read it ({error.strerror})"]) from None


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def workflow_jobs(workflow_file: Path) -> dict[str, dict[str, Any]]:
    """Job id -> job of a workflow file."""
    document = yaml.safe_load(workflow_file.read_text(encoding="utf-8")) or {}
    return dict(document.get("jobs") or {})


def workflow_events(workflow_file: Path) -> set[str]:
    """The events that start a workflow (YAML 1.1 reads the key ``on`` as True)."""
    document = yaml.safe_load(workflow_file.read_text(encoding="utf-8")) or {}
    events = document.get("on", document.get(True))
    if isinstance(events, str):
        return {events}
    return set(events or ())


def _required_checks(job_refs: Sequence[str], workflows: Path, where: str) -> tuple[list[str], list[str]]:
    """The check names of ``<workflow>:<job>`` references: the job's ``name`` (its id when unnamed), which must be
    fixed text, of a workflow that runs on pull requests (a required check that never reports blocks every merge)."""
    names, problems = [], []
    for job_ref in job_refs:
        file_name, job_id = job_ref.split(":", 1)
        path = workflows / file_name
        if not path.is_file():
            problems.append(f"{where}: {job_ref}: no workflow {file_name} in .github/workflows")
            continue
        job = workflow_jobs(path).get(job_id)
        if job is None:
            problems.append(f"{where}: {job_ref}: {file_name} has no job {job_id!r}")
            continue
        if "pull_request" not in workflow_events(path):
            problems.append(f"{where}: {job_ref}: {file_name} does not run on pull_request, so its check would "
                            "never report on a pull request")
        name = str(job.get("name", job_id))
        if "${{" in name:
            problems.append(f"{where}: {job_ref}: the job's name {name!r} is an expression; a required check needs "
                            "a fixed name")
            continue
        names.append(name)
    return names, problems
