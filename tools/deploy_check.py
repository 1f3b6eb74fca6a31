"""``python -m tools.deploy_check --env <name>``: what ``make deploy`` needs before it starts the cdktf CLI.

A deploy needs an environment file of that name, Terraform on the PATH, and AWS credentials of the environment's
account (the providers refuse any other account: ``allowed_account_ids``). Each missing piece stops the deploy
here with one line saying what to do, instead of a traceback from deep inside the CLI. Exit 0 ready, 2 not.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

from platform_config.loader import DEFAULT_ENV_DIR, EnvironmentFileError, environment_files, load_environment

#: The AWS CLI's call that shows which account the resolved credentials belong to.
CALLER_IDENTITY = ["aws", "sts", "get-caller-identity", "--output", "json"]


def problems(env_name: str) -> list[str]:
    """Why ``env_name`` cannot be deployed from this shell; empty when it can."""
    files = {path.stem: path for path in environment_files(DEFAULT_ENV_DIR)}
    if not env_name:
        return [f"usage: make deploy ENV=<{'|'.join(files)}>"]
    if env_name not in files:
        return [f"ENV={env_name}: no environments/{env_name}.yaml; environments: {', '.join(files)}"]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy_check", description=__doc__)
    parser.add_argument("--env", default="", help="the environment to deploy (an environments/<env>.yaml name)")
    args = parser.parse_args(argv)
    found = problems(args.env.strip())
    if not found:
        return 0
    print(f"make deploy ENV={args.env}: cannot deploy yet, nothing was changed:", file=sys.stderr)
    for problem in found:
        print(f"  {problem}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
