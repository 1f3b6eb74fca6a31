"""Synthesize every environment of the platform into ``cdktf.out`` (or ``$CDKTF_OUTDIR``), in one process.

Environment variables:
  PLATFORM_ENV_DIR   folder of environment files (default: environments/)
  PLATFORM_ENVS      comma-separated names to synthesize (default: all files of the folder)
  CDKTF_OUTDIR       output folder (default: cdktf.out; the cdktf CLI sets it)

An invalid environment file stops the synth before anything is written: one line per problem, exit code 1.
The output is synthesized into a scratch folder beside the target and swapped in only when complete, so a failed
synth leaves the previous output exactly as it was.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def replace_directory_atomically(target: Path, build: Callable[[Path], None]) -> None:
    """Run ``build`` into a fresh scratch folder beside ``target``; only if it succeeds, swap it in for ``target``.

    On failure the scratch folder is removed and ``target`` is untouched.
    """
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    try:
        build(scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    retired = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(retired)
    scratch.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


def _refuse(title: str, problems: list[str]) -> int:
    """Say why nothing was synthesized, one line per problem; the exit status of a refused input."""
    print(f"{title} ({len(problems)} problem(s)); nothing was synthesized:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


def main() -> int:
    from platform_config.environment_check import check_environment_files
    from platform_config.loader import EnvironmentFileError, display_path, environment_files, selected_files

    # Every problem of every file in one pass, each line naming its file: field and cross-field problems, the
    # workloads that cannot be scheduled, and what the API server or a namespace quota would refuse.
    try:
        files = selected_files()
    except EnvironmentFileError as error:
        return _refuse("Invalid environment configuration", error.problems)
    check = check_environment_files(files)
    if check.problems:
        return _refuse(check.title, check.problems)
    environments = check.environments
    file_of = {path.stem: display_path(path) for path in files}
    # The github stack holds the GitHub environments of every file: a synth of some of them leaves it out.
    every_file = set(file_of) == {path.stem for path in environment_files(files[0].parent)}

    for environment in environments:
        for warning in environment.warnings():
            print(f"WARNING: {warning}", file=sys.stderr)
    from platform_config.github_settings import GithubSettingsError, missing_state_environment

    try:
        if every_file and (warning := missing_state_environment(environments)):
            print(f"WARNING: {warning}", file=sys.stderr)
    except GithubSettingsError as error:
        return _refuse("Invalid GitHub settings", error.problems)

    from modules.provider_loader import install_provider_loader

    try:
        install_provider_loader()
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    from modules.app import synthesize_platform
    from platform_config.helm_values import ValuesFileError
    from platform_config.resource_admission import AdmissionError
    from platform_config.scheduling import SchedulingError

    target = Path(os.environ.get("CDKTF_OUTDIR") or "cdktf.out")
    try:
        replace_directory_atomically(
            target, lambda scratch: synthesize_platform(environments, scratch, with_github_stack=every_file))
    except SchedulingError as error:
        return _refuse("Workloads that cannot be scheduled", error.problems)
    except AdmissionError as error:
        shown = file_of[error.environment_name]
        return _refuse("Workloads the API server would refuse, or quotas that cannot hold them",
                       [p.line(environment_file=shown, environment_name=error.environment_name)
                        for p in error.problems])
    except ValuesFileError as error:
        return _refuse("Invalid Helm values", [str(error)])
    except GithubSettingsError as error:
        return _refuse("Invalid GitHub settings", error.problems)
    # The summary is the command's result, so it goes to stdout (the cdktf CLI prints stderr as [ERROR]).
    names = ", ".join(e.name for e in environments)
    print(f"Synthesized {names} into {target}")
    from tools.report import brief_report

    print(brief_report(environments, target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
