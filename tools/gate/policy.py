"""The files of ``policies/``: checkov's configuration, the skips with their reasons, the why-it-matters lines.

``policies/checkov.yaml`` is checkov's own config file. checkov rejects keys it does not know, so it cannot carry
a reason next to a skipped check: the skips live in ``policies/skips.yaml`` (id, reason, optional resource
patterns), the one place a check is ever switched off. The gate refuses a checkov.yaml that could make it pass
by accident (its own skip list, a check filter, soft-fail, another framework).
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from tools.gate.stacks import GateError

#: checkov.yaml keys the gate accepts. Anything else (skip-check, check, soft-fail, soft-fail-on, hard-fail-on,
#: skip-framework, skip-path, baseline, output, ...) could hide results or break the gate's parsing.
ALLOWED_CONFIG_KEYS = frozenset({
    "framework", "skip-download", "external-checks-dir", "download-external-modules", "evaluate-variables",
    "compact", "skip-results-upload", "summary-position",
})
FRAMEWORK = "terraform_json"
_CHECK_ID = re.compile(r"^CKV2?_[A-Z0-9]+_\d+$")
MIN_REASON_LENGTH = 20
#: The ``tier`` values an environment file may declare (platform_config.models.Tier; a test keeps them equal: the
#: gate runs in checkov's environment, which does not import the platform's models).
TIERS = ("dev", "staging", "prod")


@dataclass(frozen=True)
class Skip:
    """A check switched off: everywhere, or only in the stacks of environments whose tier is one of ``tiers``,
    and/or in stacks whose name matches one of ``stacks`` and/or on resources whose ``type.name`` matches one of
    ``resources`` (fnmatch patterns). Scoping by tier, not by environment name, keeps a new environment of a tier
    under the same waivers as the others of its tier."""

    check_id: str
    reason: str
    stacks: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    #: Checks whose results the reason rests on: the skip waives a failure only where each of them gave a result
    #: in the same stack and none failed (a skip of an administrator role "because only environment X can assume
    #: it" holds only while the trust check passes).
    backed_by: tuple[str, ...] = ()

    def covers(self, check_id: str, stack: str, resource: str, tier: str | None = None) -> bool:
        return (check_id == self.check_id
                and (not self.tiers or tier in self.tiers)
                and (not self.stacks or any(fnmatch.fnmatchcase(stack, p) for p in self.stacks))
                and (not self.resources or any(fnmatch.fnmatchcase(resource, p) for p in self.resources)))

    @property
    def scope(self) -> str:
        tiers = f"tiers {', '.join(self.tiers)}; " if self.tiers else ""
        stacks = f"stacks {', '.join(self.stacks)}" if self.stacks else "every stack"
        resources = ", ".join(self.resources) if self.resources else "every resource"
        return f"{tiers}{stacks}; {resources}"


@dataclass(frozen=True)
class Policies:
    folder: Path
    config_file: Path
    checks_dir: Path
    skips: tuple[Skip, ...]
    why: dict[str, str]
    #: custom graph check id -> the resource types it must give a result for. checkov drops a graph check's
    #: result when it cannot evaluate an attribute (an unresolved reference): the gate requires one.
    graph_check_targets: dict[str, frozenset[str]]
    #: environment name -> its tier, from the environment files; a stack ``<env>-<layer>`` has its environment's.
    environment_tiers: dict[str, str] = field(default_factory=dict)
    #: ``policies/joined_checks.py``: the checks that join resources, run by the gate (None: no such file).
    joined: ModuleType | None = None

    def tier_of(self, stack: str) -> str | None:
        """The tier of the environment a stack belongs to (the longest environment name it starts with), or None
        when no environment file names it: then no tier-scoped skip applies and its checks stay on."""
        owners = [name for name in self.environment_tiers if stack.startswith(f"{name}-")]
        return self.environment_tiers[max(owners, key=len)] if owners else None

    def skip_for(self, check_id: str, stack: str, resource: str) -> Skip | None:
        tier = self.tier_of(stack)
        return next((s for s in self.skips if s.covers(check_id, stack, resource, tier)), None)


def _load_yaml(path: Path, *, required: bool) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if required:
            raise GateError(f"{path} does not exist") from None
        return None
    except (OSError, yaml.YAMLError) as error:
        raise GateError(f"{path} cannot be read as YAML: {error}") from None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def check_config(path: Path, checks_dir: Path) -> None:
    """Refuse a checkov config that could let the gate pass by accident."""
    config = _load_yaml(path, required=True)
    if not isinstance(config, dict):
        raise GateError(f"{path}: expected a mapping of checkov options")
    unknown = sorted(set(config) - ALLOWED_CONFIG_KEYS)
    if unknown:
        raise GateError(
            f"{path}: option(s) {', '.join(unknown)} not allowed in the gate's checkov config: they could hide "
            f"results (skips belong in policies/skips.yaml, with a reason)")
    if _as_list(config.get("framework")) != [FRAMEWORK]:
        raise GateError(f"{path}: framework must be [{FRAMEWORK}] (the only framework that scans cdk.tf.json)")
    if config.get("skip-download") is not True:
        raise GateError(f"{path}: skip-download must be true (the gate runs offline)")
    directories = [(path.parent.parent / str(d)).resolve() for d in _as_list(config.get("external-checks-dir"))]
    if checks_dir.resolve() not in directories:
        raise GateError(f"{path}: external-checks-dir must list {checks_dir.name} (the platform's custom checks)")


def load_skips(path: Path) -> tuple[Skip, ...]:
    document = _load_yaml(path, required=True) or {}
    entries = document.get("skips") if isinstance(document, dict) else None
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise GateError(f"{path}: 'skips' must be a list of {{id, reason, tiers?, stacks?, resources?}}")
    skips, seen = [], set()
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: skip #{number}"
        if not isinstance(entry, dict) or set(entry) - {"id", "reason", "tiers", "stacks", "resources", "backed_by"}:
            raise GateError(f"{where}: expected keys id, reason and optionally tiers, stacks, resources, backed_by")
        check_id, reason = entry.get("id"), entry.get("reason")
        if not isinstance(check_id, str) or not _CHECK_ID.match(check_id):
            raise GateError(f"{where}: id {check_id!r} is not a checkov check id")
        if not isinstance(reason, str) or len(reason.strip()) < MIN_REASON_LENGTH:
            raise GateError(f"{where} ({check_id}): a skip needs a reason that says why the check does not apply")
        stacks = tuple(_as_list(entry.get("stacks")))
        resources = tuple(_as_list(entry.get("resources")))
        if not all(isinstance(p, str) and p for p in (*stacks, *resources)):
            raise GateError(f"{where} ({check_id}): stacks and resources must be patterns like dev-* or "
                            "aws_eks_cluster.*")
        tiers = tuple(_as_list(entry.get("tiers")))
        unknown_tiers = [t for t in tiers if t not in TIERS]
        if unknown_tiers:
            raise GateError(f"{where} ({check_id}): tiers {unknown_tiers} unknown; allowed: {', '.join(TIERS)}")
        backed_by = tuple(_as_list(entry.get("backed_by")))
        if not all(isinstance(c, str) and _CHECK_ID.match(c) for c in backed_by):
            raise GateError(f"{where} ({check_id}): backed_by must list check ids")
        key = (check_id, tiers, stacks, resources)
        if key in seen:
            raise GateError(f"{where}: {check_id} is listed twice with the same scope")
        seen.add(key)
        skips.append(Skip(check_id=check_id, reason=" ".join(reason.split()), stacks=stacks, resources=resources,
                          tiers=tiers, backed_by=backed_by))
    return tuple(skips)


def load_why(path: Path) -> dict[str, str]:
    document = _load_yaml(path, required=False) or {}
    if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
        raise GateError(f"{path}: expected a mapping of check id to one line")
    return {str(k): " ".join(v.split()) for k, v in document.items()}


def _filter_types(condition: Any) -> set[str]:
    """The resource types a graph check reports on: its ``filter`` on ``resource_type`` (checkov's convention,
    found at any depth of and/or)."""
    if isinstance(condition, list):
        return set().union(*(_filter_types(c) for c in condition)) if condition else set()
    if not isinstance(condition, dict):
        return set()
    if condition.get("cond_type") == "filter" and condition.get("attribute") == "resource_type":
        return {str(t) for t in _as_list(condition.get("value"))}
    return _filter_types(condition.get("and")) | _filter_types(condition.get("or"))


def load_graph_checks(checks_dir: Path) -> dict[str, frozenset[str]]:
    targets: dict[str, frozenset[str]] = {}
    for path in sorted([*checks_dir.glob("*.yaml"), *checks_dir.glob("*.yml")]):
        document = _load_yaml(path, required=True)
        check_id = (document.get("metadata") or {}).get("id") if isinstance(document, dict) else None
        if not isinstance(check_id, str) or not _CHECK_ID.match(check_id):
            raise GateError(f"{path}: metadata.id {check_id!r} is not a checkov check id")
        types = _filter_types(document.get("definition"))
        if not types:
            raise GateError(f"{path}: add a filter on resource_type so the gate knows which resources {check_id} "
                            "must give a result for")
        if check_id in targets:
            raise GateError(f"{path}: {check_id} is defined twice")
        targets[check_id] = frozenset(types)
    return targets


def default_environments_dir() -> Path:
    """Where the synthesized environments come from: ``$PLATFORM_ENV_DIR``, as for the synth, or environments/."""
    return Path(os.environ.get("PLATFORM_ENV_DIR") or Path(__file__).resolve().parents[2] / "environments")


def load_environment_tiers(directory: Path) -> dict[str, str]:
    """Environment name (the file's stem) -> the ``tier`` its file declares. The synth validates the files; the
    gate only needs the tier, and refuses a file it cannot place in a tier rather than guess."""
    tiers = {}
    for path in sorted(directory.glob("*.yaml")):
        document = _load_yaml(path, required=True)
        tier = document.get("tier") if isinstance(document, dict) else None
        if tier not in TIERS:
            raise GateError(f"{path}: tier {tier!r} is not one of {', '.join(TIERS)} (run make synth for details)")
        tiers[path.stem] = tier
    return tiers


def load_joined_checks(path: Path) -> ModuleType | None:
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("policies_joined_checks", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # a broken checks file must stop the gate, whatever it raises
        raise GateError(f"{path} cannot be loaded: {type(error).__name__}: {error}") from None
    return module


def load(folder: Path, environments_dir: Path | None = None) -> Policies:
    checks_dir = folder / "checks"
    if not (checks_dir / "__init__.py").is_file():
        raise GateError(f"{checks_dir}/__init__.py is missing: checkov would silently skip every custom check")
    config_file = folder / "checkov.yaml"
    check_config(config_file, checks_dir)
    return Policies(folder=folder, config_file=config_file, checks_dir=checks_dir,
                    skips=load_skips(folder / "skips.yaml"), why=load_why(folder / "why.yaml"),
                    graph_check_targets=load_graph_checks(checks_dir),
                    environment_tiers=load_environment_tiers(environments_dir) if environments_dir else {},
                    joined=load_joined_checks(folder / "joined_checks.py"))
