"""Synthesizing a git revision and the working tree into folders the diff can compare.

A revision is exported with ``git archive`` into a scratch folder (read-only for the repository: no worktree
entries, no checkout) and synthesized there by its own ``main.py`` with the current virtualenv's Python and
``CDKTF_OUTDIR`` pointing at the target. The working tree is synthesized in place the same way. Both run at once:
the two synths take about as long as one on a two-core machine with spare memory.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

#: Lines of a failed synth's stderr shown in the error.
_TAIL = 40


class SynthesisError(RuntimeError):
    """A side of the diff could not be synthesized (bad revision, invalid environment file, failing construct)."""


def resolve_revision(repo: Path, revision: str) -> str:
    """The commit id ``revision`` names in ``repo``."""
    result = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SynthesisError(f"{revision!r} is not a commit of {repo} (try a branch, tag or commit id; in a "
                             "shallow clone fetch it first)")
    return result.stdout.strip()


def export_revision(repo: Path, commit: str, target: Path) -> None:
    """The tracked files of ``commit`` written into ``target``."""
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", commit], capture_output=True)
    if archive.returncode != 0:
        raise SynthesisError(f"git archive {commit} failed: {archive.stderr.decode(errors='replace').strip()}")
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")


def run_synth(source: Path, outdir: Path, *, label: str, python: str | None = None) -> None:
    """Run ``<source>/main.py`` so that it synthesizes into ``outdir``."""
    env = {**os.environ, "CDKTF_OUTDIR": str(outdir), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    result = subprocess.run([python or sys.executable, "main.py"], cwd=source, env=env, capture_output=True,
                            text=True)
    if result.returncode != 0 or not (outdir / "manifest.json").is_file():
        tail = "\n".join(result.stderr.strip().splitlines()[-_TAIL:])
        raise SynthesisError(f"synthesis of {label} failed (exit {result.returncode}):\n{tail}")


def synthesize_revision(repo: Path, revision: str, outdir: Path, *, python: str | None = None) -> str:
    """Synthesize ``revision`` of ``repo`` into ``outdir``; returns the commit id."""
    commit = resolve_revision(repo, revision)
    with tempfile.TemporaryDirectory(prefix="synth-diff-") as scratch:
        source = Path(scratch) / "source"
        export_revision(repo, commit, source)
        run_synth(source, outdir, label=f"{revision} ({commit[:12]})", python=python)
    return commit


def synthesize_both(repo: Path, revision: str, base_outdir: Path, head_outdir: Path | None, *,
                    python: str | None = None) -> str:
    """Synthesize ``revision`` into ``base_outdir`` and, unless ``head_outdir`` is None, the working tree into
    ``head_outdir``, concurrently. Returns the base commit id; raises ``SynthesisError`` naming every failed side."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        base = pool.submit(synthesize_revision, repo, revision, base_outdir, python=python)
        head = pool.submit(run_synth, repo, head_outdir, label="the working tree", python=python) \
            if head_outdir is not None else None
        errors = [str(f.exception()) for f in (base, head) if f is not None and f.exception() is not None]
    if errors:
        raise SynthesisError("\n".join(errors))
    return base.result()
