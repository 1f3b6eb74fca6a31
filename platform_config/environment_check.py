"""Every problem of the selected environment files in one pass, before anything is synthesized.

In order: the field and cross-field problems of each environment file (the loader) and the Helm values files of
the environments that cannot be read; then, per environment, the workloads the scheduler would leave pending; then
the containers the API server would refuse and the namespace quotas too small for their workloads. The workload
checks run over a file with field errors too, over the parts that parsed; a check that reads a part in error is
left for the next round (whatever it found would follow from that error). Each line names the file to change; a
workload line names the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from platform_config.helm_values import ValuesFileError, values_file_problems
from platform_config.loader import EnvironmentFileError, display_path, load_environment
from platform_config.models import Environment
from platform_config.partial_validation import unless_reads_invalid
from platform_config.resource_admission import AdmissionProblem, environment_admission_problems
from platform_config.scheduling import scheduling_problems


@dataclass
class EnvironmentCheck:
    """The valid environments, and one line per problem of each kind."""

    environments: list[Environment] = field(default_factory=list)
    #: Field and cross-field problems of environment files, and unreadable values files.
    file_problems: list[str] = field(default_factory=list)
    unschedulable: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [*self.file_problems, *self.unschedulable, *self.refused]

    @property
    def title(self) -> str:
        """What went wrong, in the words of the kind of problem found (the first kind when there are several)."""
        if self.file_problems:
            return "Invalid environment configuration"
        if self.unschedulable and self.refused:
            return "Workloads that cannot be scheduled, or that the API server or a quota would refuse"
        if self.unschedulable:
            return "Workloads that cannot be scheduled"
        return "Workloads the API server would refuse, or quotas that cannot hold them"


def check_environment_files(files: Iterable[Path]) -> EnvironmentCheck:
    """Load every file of ``files`` and check each environment's workloads; see the module docstring."""
    check = EnvironmentCheck()
    files = list(files)
    for path in files:
        try:
            environment = load_environment(path)
            check.environments.append(environment)
        except EnvironmentFileError as error:
            check.file_problems += error.problems
            if error.environment is not None:
                _check_workloads(check, error.environment, display_path(path), parsed_whole=False)
            continue
        _check_workloads(check, environment, display_path(path), parsed_whole=True)
    check.file_problems += values_file_problems([path.stem for path in files])
    return check


def _check_workloads(check: EnvironmentCheck, environment: Environment, shown: str, *, parsed_whole: bool) -> None:
    def unschedulable() -> list[str]:
        return [f"{shown}: workloads of environment {environment.name}: {problem}"
                for problem in scheduling_problems(environment)]

    def refused() -> list[str]:
        return [problem.line(environment_file=shown, environment_name=environment.name)
                for problem in _admission_problems(environment)]

    def run(find: Callable[[], list[str]]) -> list[str]:
        return find() if parsed_whole else unless_reads_invalid(find)

    check.unschedulable += run(unschedulable)
    check.refused += run(refused)


def _admission_problems(environment: Environment) -> list[AdmissionProblem]:
    try:
        return environment_admission_problems(environment)
    except ValuesFileError:
        return []  # reported with the values files
