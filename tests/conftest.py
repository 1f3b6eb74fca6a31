"""Shared fixtures: the environments (pure Python) and ONE synthesis of the whole platform per test session.

Importing the providers is the expensive part of a synth, so every construct test reads the same synthesized
output: a real ``App(outdir=tmp).synth()``, which also resolves cross-stack references.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modules.provider_loader import install_provider_loader
from platform_config.loader import DEFAULT_ENV_DIR, load_environments
from platform_config.models import Environment

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# Before any cdktf_cdktf_provider_* import, including imports made while pytest collects test modules.
install_provider_loader()

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def environments() -> dict[str, Environment]:
    return {env.name: env for env in load_environments(DEFAULT_ENV_DIR, names=None)}


@pytest.fixture(scope="session")
def synth_outdir(tmp_path_factory: pytest.TempPathFactory, environments: dict[str, Environment]) -> Path:
    """Every environment synthesized once, into a session temp folder (manifest.json and stacks/)."""
    from modules.app import synthesize_platform

    outdir = tmp_path_factory.mktemp("synth") / "cdktf.out"
    synthesize_platform(list(environments.values()), outdir)
    return outdir


@pytest.fixture(scope="session")
def stacks(synth_outdir: Path) -> dict[str, dict]:
    """Parsed ``cdk.tf.json`` of every synthesized stack, by stack name (``prod-cluster``, ...)."""
    manifest = json.loads((synth_outdir / "manifest.json").read_text())
    return {name: json.loads((synth_outdir / stack["synthesizedStackPath"]).read_text())
            for name, stack in manifest["stacks"].items()}


@pytest.fixture(scope="session")
def stack_environments(stacks: dict[str, dict], environments: dict[str, Environment]) -> dict[str, Environment]:
    """Stack name -> the environment it belongs to (stacks are named ``<env>-<layer>``; the longest match wins)."""
    def owner(stack_name: str) -> Environment:
        names = [name for name in environments if stack_name.startswith(f"{name}-")]
        assert names, f"stack {stack_name} belongs to no environment file"
        return environments[max(names, key=len)]

    return {name: owner(name) for name in stacks}


@dataclass
class MutationRuns:
    """The gate over the real synth (``real``) and over each mutant of tests/gate_mutations.py (by name), all
    in one gate process: one checkov run scans each distinct prepared stack once."""

    real: Any
    mutants: dict[str, tuple[Any, list]]  # name -> (GateRun, what the gate must report)
    several: tuple[Any, Any]  # (gate_mutations.SeveralRegressions, its GateRun)


@pytest.fixture(scope="session")
def mutation_runs(synth_outdir: Path, tmp_path_factory: pytest.TempPathFactory) -> MutationRuns:
    from gate_mutations import MUTANTS, Folder, SeveralRegressions

    from tools.gate.harness import run_gate_many

    root = tmp_path_factory.mktemp("mutants")
    folders, expected = [], {}
    for mutant in MUTANTS:
        target = root / mutant.name
        shutil.copytree(synth_outdir, target)
        folder = Folder(target)
        expected[mutant.name] = mutant.apply(folder)
        folder.write()
        folders.append(target)
    several = SeveralRegressions(synth_outdir, root / "several-regressions")
    runs = run_gate_many([synth_outdir, *folders, several.folder], tmp_path_factory.mktemp("mutant-reports"))
    return MutationRuns(real=runs[0], mutants={m.name: (run, expected[m.name])
                                               for m, run in zip(MUTANTS, runs[1:-1], strict=True)},
                        several=(several, runs[-1]))
