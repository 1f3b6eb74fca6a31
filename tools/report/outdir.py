"""Reading a synthesized folder (``manifest.json`` and ``stacks/<stack>/cdk.tf.json``), or synthesizing one.

The report and the architecture document read ``cdktf.out`` when it holds every environment they describe; otherwise
(nothing synthesized yet, or a ``PLATFORM_ENVS=dev make synth`` left only some environments) they synthesize the
working tree into a temporary folder with its own ``main.py``, as ``make synth`` would, and read that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from platform_config.report import environment_of_stack

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Lines of a failed synth's stderr shown in the error.
_TAIL = 30


class SynthesisError(RuntimeError):
    """The working tree could not be synthesized."""


def load_manifest(outdir: Path) -> dict[str, dict]:
    """The ``stacks`` entries of ``<outdir>/manifest.json``, by stack name."""
    manifest = Path(outdir) / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: not a synthesized cdktf folder")
    return json.loads(manifest.read_text())["stacks"]


def load_stacks(outdir: Path, manifest: dict[str, dict] | None = None) -> dict[str, dict]:
    """Every stack's parsed ``cdk.tf.json``, by stack name."""
    manifest = manifest if manifest is not None else load_manifest(outdir)
    return {name: json.loads((Path(outdir) / entry["synthesizedStackPath"]).read_text())
            for name, entry in manifest.items()}


def missing_environments(outdir: Path, environments: Sequence[str]) -> list[str]:
    """The environments of which ``outdir`` holds no stack (all of them when it is not a synthesized folder)."""
    try:
        names = load_manifest(outdir)
    except (FileNotFoundError, ValueError, KeyError):
        return list(environments)
    present = {environment_of_stack(name, environments) for name in names}
    return [e for e in environments if e not in present]


def synthesize(target: Path, environments: Sequence[str]) -> None:
    """Synthesize ``environments`` of the working tree into ``target`` (its ``main.py``, this Python)."""
    env = {**os.environ, "CDKTF_OUTDIR": str(target), "PLATFORM_ENVS": ",".join(environments),
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    result = subprocess.run([sys.executable, "main.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0 or not (target / "manifest.json").is_file():
        tail = "\n".join(result.stderr.strip().splitlines()[-_TAIL:])
        raise SynthesisError(f"synthesis of the working tree failed (exit {result.returncode}):\n{tail}")


@contextmanager
def synthesized(environments: Sequence[str], outdir: Path | None) -> Iterator[Path]:
    """A synthesized folder holding every one of ``environments``: ``outdir`` if it does, else a temporary one."""
    if outdir is not None:
        missing = missing_environments(outdir, environments)
        if not missing:
            yield Path(outdir)
            return
        print(f"{outdir} holds no stacks of {', '.join(missing)}: synthesizing the working tree into a temporary "
              "folder", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="platform-report-") as scratch:
        target = Path(scratch) / "cdktf.out"
        synthesize(target, environments)
        yield target
