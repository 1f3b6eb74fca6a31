"""Shared fixtures: the environments (pure Python) and ONE synthesis of the whole platform per test session.

Importing the providers is the expensive part of a synth, so every construct test reads the same synthesized
output: a real ``App(outdir=tmp).synth()``, which also resolves cross-stack references.

The slowest pieces of work are subprocesses that need nothing from the tests but their inputs: the gate over the
synth and its mutants, the gate over the small look-alike folders, and a synth with eager provider imports. The
session starts each as soon as its inputs exist (when its tests are selected), so they run on the machine's second
core while the tests go on, and the fixtures that need them wait for them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modules.provider_loader import ENV_VAR as PROVIDER_LOADER_MODE
from modules.provider_loader import install_provider_loader
from platform_config.loader import DEFAULT_ENV_DIR, load_environments
from platform_config.models import Environment

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# Before any cdktf_cdktf_provider_* import, including imports made while pytest collects test modules.
install_provider_loader()

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The environment the eager-import synth builds (tests/test_provider_loader.py compares its stacks).
EAGER_SYNTH_ENV = "dev"


class _Background:
    """The session's background subprocesses: which fixtures the selected tests need, what was started."""

    fixtures: frozenset[str] = frozenset()
    folder: Path | None = None
    started: dict[str, object] = {}

    @classmethod
    def wanted(cls, fixture: str) -> bool:
        return fixture in cls.fixtures

    @classmethod
    def scratch(cls) -> Path:
        if cls.folder is None:
            cls.folder = Path(tempfile.mkdtemp(prefix="pytest-background-"))
        return cls.folder


#: Fixtures that wait for a background subprocess.
BACKGROUND_FIXTURES = frozenset({"eager_synth", "mutation_runs", "look_alike_runs"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _Background.fixtures = frozenset(name for item in items for name in getattr(item, "fixturenames", ()))
    # The tests that wait for a background subprocess run last, each group in its collected order: by then the
    # subprocess has had the whole run of the other tests to finish.
    items.sort(key=lambda item: bool(BACKGROUND_FIXTURES & set(getattr(item, "fixturenames", ()))))
    if _Background.wanted("eager_synth"):
        _Background.started["eager_synth"] = _start_eager_synth(_Background.scratch() / "eager" / "cdktf.out")
    if _Background.wanted("look_alike_runs"):
        _Background.started["look_alike_runs"] = _start_look_alike_runs(_Background.scratch() / "look-alikes")


def pytest_sessionfinish() -> None:
    for started in _Background.started.values():
        process = getattr(started, "process", started)
        if isinstance(process, subprocess.Popen) and process.poll() is None:
            process.kill()
            process.wait()
    if _Background.folder is not None:
        shutil.rmtree(_Background.folder, ignore_errors=True)


@dataclass
class EagerSynth:
    """``PLATFORM_ENVS=<env> python main.py`` with the providers imported as shipped (no lazy loader)."""

    process: subprocess.Popen
    outdir: Path

    def files(self) -> dict[str, bytes]:
        """Every file the synth wrote, by path relative to its output folder."""
        _, stderr = self.process.communicate()
        assert self.process.returncode == 0, f"main.py failed with eager provider imports:\n{stderr}"
        return {str(p.relative_to(self.outdir)): p.read_bytes() for p in sorted(self.outdir.rglob("*")) if p.is_file()}


def _start_eager_synth(outdir: Path) -> EagerSynth:
    env = {**os.environ, "CDKTF_OUTDIR": str(outdir), "PLATFORM_ENVS": EAGER_SYNTH_ENV,
           PROVIDER_LOADER_MODE: "eager", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    process = subprocess.Popen([sys.executable, "main.py"], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    return EagerSynth(process, outdir)


@pytest.fixture(scope="session")
def eager_synth() -> EagerSynth:
    started = _Background.started.get("eager_synth")
    return started if isinstance(started, EagerSynth) else _start_eager_synth(_Background.scratch() / "eager-late")


@pytest.fixture(scope="session")
def environments() -> dict[str, Environment]:
    return {env.name: env for env in load_environments(DEFAULT_ENV_DIR, names=None)}


@pytest.fixture(scope="session")
def synth_outdir(tmp_path_factory: pytest.TempPathFactory, environments: dict[str, Environment]) -> Path:
    """Every environment synthesized once, into a session temp folder (manifest.json and stacks/)."""
    from modules.app import synthesize_platform

    outdir = tmp_path_factory.mktemp("synth") / "cdktf.out"
    synthesize_platform(list(environments.values()), outdir)
    if _Background.wanted("mutation_runs"):
        _Background.started["mutation_runs"] = _start_mutation_runs(outdir, _Background.scratch() / "mutants")
    return outdir


@pytest.fixture(scope="session")
def stacks(synth_outdir: Path) -> dict[str, dict]:
    """Parsed ``cdk.tf.json`` of every synthesized stack, by stack name (``prod-cluster``, ...)."""
    manifest = json.loads((synth_outdir / "manifest.json").read_text())
    return {name: json.loads((synth_outdir / stack["synthesizedStackPath"]).read_text())
            for name, stack in manifest["stacks"].items()}


@pytest.fixture(scope="session")
def stack_environments(stacks: dict[str, dict], environments: dict[str, Environment]) -> dict[str, Environment]:
    """Stack name -> the environment it belongs to (stacks are named ``<env>-<layer>``; the longest match wins),
    for every stack but the repository's ``github`` stack, which belongs to all of them."""
    from platform_config.github_settings import GITHUB_STACK

    def owner(stack_name: str) -> Environment:
        names = [name for name in environments if stack_name.startswith(f"{name}-")]
        assert names, f"stack {stack_name} belongs to no environment file"
        return environments[max(names, key=len)]

    return {name: owner(name) for name in stacks if name != GITHUB_STACK}


@dataclass
class MutationRuns:
    """The gate over the real synth (``real``) and over each mutant of tests/gate_mutations.py (by name), all
    in one gate process: one checkov run scans each distinct prepared stack once."""

    real: Any
    mutants: dict[str, tuple[Any, list]]  # name -> (GateRun, what the gate must report)
    several: tuple[Any, Any]  # (gate_mutations.SeveralRegressions, its GateRun)
    namespace_and_data: tuple[Any, dict]  # (GateRun, what gate_mutations.namespace_and_data_regressions expects)


@dataclass
class _StartedMutationRuns:
    batch: Any  # tools.gate.harness.GateBatch
    expected: dict[str, list]
    several: Any  # gate_mutations.SeveralRegressions
    namespace_and_data: dict


def _start_mutation_runs(synth_outdir: Path, root: Path) -> _StartedMutationRuns:
    """Copy the synth once per mutant of tests/gate_mutations.py, apply it, and start one gate over them all."""
    from gate_mutations import MUTANTS, Folder, SeveralRegressions, namespace_and_data_regressions

    from tools.gate.harness import start_gate_many

    folders, expected = [], {}
    for mutant in MUTANTS:
        target = root / mutant.name
        shutil.copytree(synth_outdir, target)
        folder = Folder(target)
        expected[mutant.name] = mutant.apply(folder)
        folder.write()
        folders.append(target)
    several = SeveralRegressions(synth_outdir, root / "several-regressions")
    namespace_and_data = root / "namespace-and-data-regressions"
    shutil.copytree(synth_outdir, namespace_and_data)
    folder = Folder(namespace_and_data)
    namespace_and_data_expected = namespace_and_data_regressions(folder)
    folder.write()
    batch = start_gate_many([synth_outdir, *folders, several.folder, namespace_and_data], root / "reports")
    return _StartedMutationRuns(batch, expected, several, namespace_and_data_expected)


@pytest.fixture(scope="session")
def mutation_runs(synth_outdir: Path) -> MutationRuns:
    from gate_mutations import MUTANTS

    started = _Background.started.get("mutation_runs")
    if not isinstance(started, _StartedMutationRuns):  # selected after collection (a plugin), or not yet started
        started = _start_mutation_runs(synth_outdir, _Background.scratch() / "mutants-late")
    runs = started.batch.finish()
    return MutationRuns(real=runs[0], mutants={m.name: (run, started.expected[m.name])
                                               for m, run in zip(MUTANTS, runs[1:-2], strict=True)},
                        several=(started.several, runs[-2]),
                        namespace_and_data=(runs[-1], started.namespace_and_data))


@dataclass
class LookAlikeRuns:
    """The gate over the small synthesized-folder look-alikes, in one gate process: tests/fixtures/policies (the
    custom checks' fixtures) and the accidents of tests/gate_folders.py, each with its folder."""

    policy_fixtures: Any  # GateRun
    accidents: tuple[Any, Path]  # (GateRun, the folder)


POLICY_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "policies"


@dataclass
class _StartedLookAlikeRuns:
    batch: Any  # tools.gate.harness.GateBatch
    accidents: Path


def _start_look_alike_runs(root: Path) -> _StartedLookAlikeRuns:
    from gate_folders import write_accident_folder

    from tools.gate.harness import start_gate_many

    accidents = write_accident_folder(root / "accidents")
    batch = start_gate_many([POLICY_FIXTURES, accidents], root / "reports", "--manifest-stacks")
    return _StartedLookAlikeRuns(batch, accidents)


@pytest.fixture(scope="session")
def look_alike_runs() -> LookAlikeRuns:
    started = _Background.started.get("look_alike_runs")
    if not isinstance(started, _StartedLookAlikeRuns):
        started = _start_look_alike_runs(_Background.scratch() / "look-alikes-late")
    policy_fixtures, accidents = started.batch.finish()
    return LookAlikeRuns(policy_fixtures=policy_fixtures, accidents=(accidents, started.accidents))
