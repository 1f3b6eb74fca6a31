"""Reading environment files: YAML in, validated ``Environment`` out, or one precise message per problem.

A message names the file, the field (dotted path), what is wrong with the value and what is allowed, e.g.::

    environments/prod.yaml: node_pools.a100-mig.gpu.sharing: MIG layout 3g.40gb x2 + 1g.10gb x1 does not fit ...
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from platform_config.models import ConfigProblems, Environment
from platform_config.partial_validation import partial_model

DEFAULT_ENV_DIR = Path(__file__).resolve().parent.parent / "environments"


class EnvironmentFileError(Exception):
    """One or more environment files are invalid; ``problems`` holds one line per problem. ``environment`` is the
    file's environment as far as it parsed, its parts with field errors ``INVALID`` (see
    ``platform_config.partial_validation``), so later checks can still run over the rest; None when there is none."""

    def __init__(self, problems: list[str], environment: Environment | None = None):
        self.problems = problems
        self.environment = environment
        super().__init__("\n".join(problems))


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (PyYAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _field_path(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``loc`` accepts (walking dict-of-model fields by their key)."""
    model: type[BaseModel] | None = Environment
    for part in loc:
        if model is None:
            return []
        field = model.model_fields.get(str(part))
        if field is None:  # a dict key such as a pool name
            continue
        model = _model_in(field.annotation)
    return sorted(model.model_fields) if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found:
            return found
    metadata_origin = getattr(annotation, "__origin__", None)
    return _model_in(metadata_origin) if metadata_origin not in (None, annotation) else None


def _messages(error: dict[str, Any]) -> list[tuple[str, str]]:
    loc = tuple(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigProblems):
        return cause.problems
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(loc[:-1]))
        return [(_field_path(loc), f"unknown key; allowed here: {allowed}")]
    message = error["msg"].removeprefix("Value error, ")
    if kind not in ("missing", "value_error") and "input" in error:
        message = f"{message} (got {error['input']!r})"
    if kind == "string_type" and isinstance(error.get("input"), int | float):
        message += ('; YAML read unquoted digits as a number (leading zeros and trailing zeros are lost): put '
                    'the value in quotes, e.g. account_id: "012345678901", kubernetes_version: "1.30"')
    return [(_field_path(loc), message)]


def load_environment(path: Path, today: date | None = None) -> Environment:
    """Parse and validate one environment file; raise ``EnvironmentFileError`` listing every problem. Support
    dates (the Kubernetes version) are judged on ``today`` (default: the current date)."""
    shown = _display(path)
    try:
        with path.open(encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_UniqueKeyLoader)
    except OSError as error:
        raise EnvironmentFileError([f"{shown}: cannot read: {error.strerror}"]) from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        reason = getattr(error, "problem", None) or str(error)
        raise EnvironmentFileError([f"{shown}:{line}: not valid YAML: {reason}"]) from None
    if not isinstance(data, dict):
        raise EnvironmentFileError([f"{shown}: expected a mapping of settings, got {type(data).__name__}"])
    problems = []
    if data.get("name") != path.stem:
        problems.append(f"{shown}: name: must equal the file name {path.stem!r} (got {data.get('name')!r})")
    context = {"today": today or date.today()}
    try:
        environment = Environment.model_validate(data, context=context)
    except ValidationError as error:
        problems += [f"{shown}: {field}: {message}"
                     for detail in error.errors() for field, message in _messages(detail)]
        # Field errors stop pydantic before the cross-field rules: check those over the parts that parsed. (An
        # error without a location comes from the rules themselves, which ran because every field parsed.)
        field_errors = [tuple(detail["loc"]) for detail in error.errors() if detail["loc"]]
        partial = partial_model(Environment, data, field_errors, context)
        environment = partial.model
        problems += [f"{shown}: {field}: {message}" for field, message in partial.rule_problems()]
    if problems:
        raise EnvironmentFileError(problems, environment)
    return environment


def environment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def load_environments(directory: Path | None = None, names: Iterable[str] | None = None) -> list[Environment]:
    """Every environment of ``directory`` (default ``$PLATFORM_ENV_DIR`` or ``environments/``), optionally
    limited to ``names`` (default ``$PLATFORM_ENVS``, comma-separated). Problems of all files are reported at once."""
    environments, problems = read_environments(selected_files(directory, names))
    if problems:
        raise EnvironmentFileError(problems)
    return environments


def selected_files(directory: Path | None = None, names: Iterable[str] | None = None) -> list[Path]:
    """The environment files ``load_environments`` reads; ``EnvironmentFileError`` when there are none, or when
    ``names`` asks for one that does not exist."""
    directory = Path(directory or os.environ.get("PLATFORM_ENV_DIR") or DEFAULT_ENV_DIR)
    if names is None and os.environ.get("PLATFORM_ENVS"):
        names = [n.strip() for n in os.environ["PLATFORM_ENVS"].split(",") if n.strip()]
    files = environment_files(directory)
    if not files:
        raise EnvironmentFileError([f"{_display(directory)}: no environment files (*.yaml) found"])
    if names is not None:
        names = list(names)
        available = {f.stem: f for f in files}
        missing = [n for n in names if n not in available]
        if missing:
            raise EnvironmentFileError([f"PLATFORM_ENVS: no environment file for {', '.join(missing)}; "
                                        f"available: {', '.join(available)}"])
        files = [available[n] for n in names]
    return files


def read_environments(files: Iterable[Path]) -> tuple[list[Environment], list[str]]:
    """The valid environments of ``files``, and the problems of the others (every problem of every file)."""
    environments, problems = [], []
    for path in files:
        try:
            environments.append(load_environment(path))
        except EnvironmentFileError as error:
            problems += error.problems
    return environments, problems


def display_path(path: Path) -> str:
    """A path as messages show it: relative to the working directory when inside it."""
    return _display(path)
