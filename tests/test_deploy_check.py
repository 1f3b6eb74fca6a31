"""``make deploy`` stops before the cdktf CLI with one line per missing piece: environment, Terraform, credentials."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests_support import ENVIRONMENT_NAMES
from tools import deploy_check


def fake_tool(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def tools_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with only the fake tools a test puts there."""
    monkeypatch.setenv("PATH", str(tmp_path))
    fake_tool(tmp_path, "terraform", "exit 0")
    return tmp_path


def test_an_unknown_or_missing_environment_lists_the_environment_files(tools_folder):
    [problem] = deploy_check.problems("nope")
    assert problem == f"ENV=nope: no environments/nope.yaml; environments: {', '.join(ENVIRONMENT_NAMES)}"
    [usage] = deploy_check.problems("")
    assert usage == f"usage: make deploy ENV=<{'|'.join(ENVIRONMENT_NAMES)}>"


def test_without_credentials_the_deploy_stops_with_what_to_do_and_no_traceback(tools_folder, environments, capsys):
    fake_tool(tools_folder, "aws", 'echo "Unable to locate credentials." >&2; exit 255')
    env = next(iter(environments.values()))
    assert deploy_check.main(["--env", env.name]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "no usable AWS credentials (Unable to locate credentials.)" in err
    assert f"sign in to account {env.account_id}" in err


def test_credentials_of_another_account_are_refused(tools_folder, environments):
    env = next(iter(environments.values()))
    other = "999999999999" if env.account_id != "999999999999" else "888888888888"
    fake_tool(tools_folder, "aws", f'echo \'{{"Account": "{other}"}}\'')
    [problem] = deploy_check.problems(env.name)
    assert f"credentials are for account {other}" in problem
    fake_tool(tools_folder, "aws", f'echo \'{{"Account": "{env.account_id}"}}\'')
    assert deploy_check.problems(env.name) == []


def test_a_missing_terraform_or_aws_cli_is_named(tools_folder, environments):
    (tools_folder / "terraform").unlink()
    found = deploy_check.problems(next(iter(environments)))
    assert any(p.startswith("terraform is not on the PATH") for p in found)
    assert any(p.startswith("the AWS CLI is not on the PATH") for p in found)


# --- make deploy-github --------------------------------------------------------------------------------------------

def test_the_github_stack_without_token_or_credentials_stops_with_what_to_do_and_no_traceback(
        tools_folder, monkeypatch, capsys):
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("PLATFORM_ENVS", raising=False)
    fake_tool(tools_folder, "aws", 'echo "Unable to locate credentials." >&2; exit 255')
    assert deploy_check.main(["--stack", "github"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("make deploy-github: cannot deploy yet, nothing was changed:")
    assert "GITHUB_TOKEN is not set: export a token of an administrator of the repository" in err
    assert "no usable AWS credentials (Unable to locate credentials.)" in err


def test_the_github_stack_deploys_from_every_environment_file_with_the_state_accounts_credentials(
        tools_folder, monkeypatch):
    from platform_config.github_settings import github_settings
    from platform_config.loader import DEFAULT_ENV_DIR, load_environments

    state = github_settings(load_environments(DEFAULT_ENV_DIR, names=None)).state_environment
    monkeypatch.setenv("GITHUB_TOKEN", "placeholder-not-a-token")
    fake_tool(tools_folder, "aws", f'echo \'{{"Account": "{state.account_id}"}}\'')
    monkeypatch.delenv("PLATFORM_ENVS", raising=False)
    assert deploy_check.github_problems() == []
    monkeypatch.setenv("PLATFORM_ENVS", state.name)
    [problem] = deploy_check.github_problems()
    assert problem.startswith("PLATFORM_ENVS is set: unset it")


def test_make_deploy_env_github_points_to_the_github_target(tools_folder):
    if "github" in ENVIRONMENT_NAMES:
        pytest.skip("an environment file is named github")
    [problem] = deploy_check.problems("github")
    assert problem.endswith("the repository's GitHub settings deploy with `make deploy-github`")
