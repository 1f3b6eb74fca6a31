"""Which stacks a synthesized folder must hold: each environment of ``environments/`` times each of its layers
(``platform_config.layers``), not whatever the manifest lists. A stack dropped from both the folder and the
manifest, or a stack no environment asks for, fails the gate."""

from __future__ import annotations

from pathlib import Path

from platform_config.layers import expected_stacks
from platform_config.loader import EnvironmentFileError, load_environments
from platform_config.models import Environment
from tools.gate.stacks import GateError, Stack
from tools.gate.verdict import Problem


def environments(environments_dir: Path) -> list[Environment]:
    """Every environment file, validated; GateError when one is refused (the stacks to expect are unknown)."""
    try:
        return load_environments(environments_dir, names=None)
    except EnvironmentFileError as error:
        raise GateError(f"cannot tell which stacks to expect: {error}") from None


def expected_names(loaded: list[Environment]) -> list[str]:
    """``<env>-<layer>`` for every environment and each of its layers."""
    return expected_stacks(loaded)


def viewer_principals(loaded: list[Environment]) -> dict[str, set[str]]:
    """Environment name -> the principals its file gives read-only cluster access."""
    return {env.name: {str(p.arn) for p in env.cluster.viewer_principals} for env in loaded}


def stacks_to_gate(out_dir: Path, listed: list[Stack], expected: list[str]) -> tuple[list[Stack], list[Problem]]:
    """The expected stacks (from the manifest's entry when it has one, else at ``stacks/<name>/cdk.tf.json``),
    and a problem for each expected stack the manifest lacks and each stack, listed or on disk, none expects."""
    by_name = {stack.name: stack for stack in listed}
    problems = []
    gated = []
    for name in expected:
        if name not in by_name:
            problems.append(Problem("missing-stack", "expected (an environment times a layer) but manifest.json "
                                    "does not list it", name))
        gated.append(by_name.get(name) or Stack(name=name, source=out_dir / "stacks" / name / "cdk.tf.json"))
    stacks_folder = out_dir / "stacks"
    on_disk = {path.name for path in stacks_folder.iterdir() if path.is_dir()} if stacks_folder.is_dir() else set()
    for name in sorted((set(by_name) | on_disk) - set(expected)):
        where = "listed in manifest.json" if name in by_name else f"a folder of {stacks_folder}"
        problems.append(Problem("extra-stack", f"{where}, but no environment file and layer asks for it "
                                "(platform_config/layers.py, environments/)", name))
    return gated, problems
