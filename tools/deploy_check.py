"""``python -m tools.deploy_check --env <name>`` (or ``--stack github``): what ``make deploy`` (``make
deploy-github``) needs before it starts the cdktf CLI.

A deploy needs an environment file of that name, Terraform on the PATH, and AWS credentials of the environment's
account (the providers refuse any other account: ``allowed_account_ids``). The github stack needs a GitHub token
in ``GITHUB_TOKEN`` (the provider reads it from there), every environment file in the synth (it is derived from
all of them), and the AWS credentials of the environment whose state bucket keeps its state. Each missing piece
stops the deploy here with one line saying what to do, instead of a traceback from deep inside the CLI. Exit 0
ready, 2 not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

from platform_config.github_settings import GITHUB_STACK, GithubSettingsError, github_settings
from platform_config.loader import (
    DEFAULT_ENV_DIR,
    EnvironmentFileError,
    environment_files,
    load_environment,
    load_environments,
)

#: The AWS CLI's call that shows which account the resolved credentials belong to.
CALLER_IDENTITY = ["aws", "sts", "get-caller-identity", "--output", "json"]


def problems(env_name: str) -> list[str]:
    """Why ``env_name`` cannot be deployed from this shell; empty when it can."""
    files = {path.stem: path for path in environment_files(DEFAULT_ENV_DIR)}
    if not env_name:
        return [f"usage: make deploy ENV=<{'|'.join(files)}>"]
    if env_name not in files:
        hint = "; the repository's GitHub settings deploy with `make deploy-github`" if env_name == GITHUB_STACK else ""
        return [f"ENV={env_name}: no environments/{env_name}.yaml; environments: {', '.join(files)}{hint}"]
    try:
        environment = load_environment(files[env_name])
    except EnvironmentFileError as error:
        return error.problems
    found = []
    if shutil.which("terraform") is None:
        found.append("terraform is not on the PATH: install Terraform >= 1.10 (the S3 backend uses use_lockfile)")
    if shutil.which("aws") is None:
        found.append("the AWS CLI is not on the PATH: install it (cdktf's Terraform providers and the EKS token "
                     "both use the same credentials)")
        return found
    try:
        result = subprocess.run(CALLER_IDENTITY, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return [*found, "AWS credentials: `aws sts get-caller-identity` did not answer in 60 s (no network?)"]
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return [*found, f"no usable AWS credentials ({reason}): sign in to account {environment.account_id}, e.g. "
                        f"`aws sso login --profile <profile>` and `export AWS_PROFILE=<profile>`"]
    account = json.loads(result.stdout).get("Account")
    if account != environment.account_id:
        found.append(f"the AWS credentials are for account {account}, but environments/{env_name}.yaml deploys to "
                     f"account {environment.account_id}: switch profile")
    return found


def github_problems() -> list[str]:
    """Why the github stack cannot be deployed from this shell; empty when it can."""
    found = []
    if os.environ.get("PLATFORM_ENVS", "").strip():
        found.append("PLATFORM_ENVS is set: unset it; the github stack holds the GitHub environments of every "
                     "environment file, and a synth of some of them would delete the others'")
    if not os.environ.get("GITHUB_TOKEN", "").strip():
        found.append("GITHUB_TOKEN is not set: export a token of an administrator of the repository (fine-grained: "
                     "Administration and Environments write on the repository and the GitOps repository, Members "
                     "read on the organization), e.g. `export GITHUB_TOKEN=$(gh auth token)`")
    try:
        settings = github_settings(load_environments(DEFAULT_ENV_DIR, names=None))
    except (EnvironmentFileError, GithubSettingsError) as error:
        return [*found, *error.problems]
    if settings is None:
        return [*found, "no environment file has delivery settings: there is no repository, so no github stack, "
                        "to deploy"]
    return [*found, *problems(settings.state_environment.name)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy_check", description=__doc__)
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--env", default="", help="the environment to deploy (an environments/<env>.yaml name)")
    target.add_argument("--stack", choices=[GITHUB_STACK], help="a stack of no environment: the repository's "
                        "GitHub settings")
    args = parser.parse_args(argv)
    found = github_problems() if args.stack else problems(args.env.strip())
    if not found:
        return 0
    command = "make deploy-github" if args.stack else f"make deploy ENV={args.env}"
    print(f"{command}: cannot deploy yet, nothing was changed:", file=sys.stderr)
    for problem in found:
        print(f"  {problem}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
