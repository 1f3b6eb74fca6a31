"""Helm chart pins and release values: the catalogue, and values layered the way Helm layers them.

A release's values are ``helm-values/<release>/values.yaml``, then ``values-<env>.yaml``, then the values computed
from the infrastructure (ARNs, names, the GPU sharing configuration), merged with Helm's rules: maps merge key by
key, anything else (lists included) replaces, and ``null`` removes a key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

REPO_ROOT = Path(__file__).resolve().parent.parent
VALUES_DIR = REPO_ROOT / "helm-values"
CHARTS_FILE = Path(__file__).with_name("data") / "charts.yaml"

#: An exact chart version: semver with an optional leading v, no ranges or wildcards.
EXACT_VERSION = r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$"


class ValuesFileError(Exception):
    """A Helm values file that cannot be read as a mapping of values; the message is one line: file, line, what."""


class PodValues(BaseModel):
    """Where a chart's values set its Deployment's replicas and main container resources (dotted paths)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    replicas: str
    resources: str


class ChartPin(BaseModel):
    """Where a release's chart comes from, pinned exactly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repository: Annotated[str, Field(pattern=r"^(https|oci)://\S+$")]
    chart: str
    version: Annotated[str, Field(pattern=EXACT_VERSION)]
    namespace: str
    purpose: str
    #: For charts installed into an application namespace (which has a LimitRange and a quota): where their values
    #: size their pods, so the admission check can count them.
    pods: PodValues | None = None


@cache
def chart_catalogue(path: Path = CHARTS_FILE) -> dict[str, ChartPin]:
    with path.open(encoding="utf-8") as handle:
        return TypeAdapter(dict[str, ChartPin]).validate_python(yaml.safe_load(handle))


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing: maps merge recursively, other values replace, ``None`` deletes the key."""
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open(encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        what = " ".join(str(getattr(error, "problem", None) or error).split())
        raise ValuesFileError(f"{_shown(path)}{where}: not valid YAML: {what}") from None
    if not isinstance(data, dict):
        raise ValuesFileError(f"{_shown(path)}: expected a mapping of values, got {type(data).__name__}")
    return data


def release_values(release: str, environment_name: str, computed: Mapping[str, Any] | None = None,
                   values_dir: Path = VALUES_DIR) -> dict[str, Any]:
    """The merged values of ``release`` in ``environment_name``: defaults, environment overlay, computed."""
    folder = values_dir / release
    layered = merge_values(_read(folder / "values.yaml"), _read(folder / f"values-{environment_name}.yaml"))
    return merge_values(layered, computed or {})


def values_file_setting(release: str, environment_name: str, dotted: str, values_dir: Path = VALUES_DIR) -> str:
    """The values file to change for the value at ``dotted`` (e.g. ``resources``) of ``release`` in
    ``environment_name``: the environment's overlay when it sets the value, else the defaults file."""
    folder = values_dir / release
    overlay = folder / f"values-{environment_name}.yaml"
    values: Any = _read(overlay)
    for key in dotted.split("."):
        values = values.get(key) if isinstance(values, Mapping) else None
    return _shown(overlay if values is not None else folder / "values.yaml")


def values_file_problems(environment_names: list[str], values_dir: Path = VALUES_DIR) -> list[str]:
    """One line per values file of the environments that cannot be read as a mapping of values (every release's
    defaults and each environment's overlays), so all of them are reported before the synth."""
    files = [*sorted(values_dir.glob("*/values.yaml")),
             *(path for name in environment_names for path in sorted(values_dir.glob(f"*/values-{name}.yaml")))]
    problems = []
    for path in files:
        try:
            _read(path)
        except ValuesFileError as error:
            problems.append(str(error))
    return problems


def values_yaml(values: Mapping[str, Any]) -> str:
    """Values as the plain YAML text a reviewer reads in the plan (stable key order, no anchors)."""

    return yaml.dump(dict(values), Dumper=_ValuesDumper, sort_keys=True, default_flow_style=False, width=120)


class _ValuesDumper(yaml.SafeDumper):
    """No anchors, and multi-line strings (embedded configs, dashboards) as readable literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text and not any(line != line.rstrip() for line in text.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_ValuesDumper.add_representer(str, _represent_str)


def is_exact_version(version: str) -> bool:
    return re.match(EXACT_VERSION, version) is not None
