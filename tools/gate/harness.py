"""Running the gate and checkov from the project's tests.

The project's environment (.venv) has no checkov: the gate runs as a subprocess with the checkov environment's
Python, exactly as ``make gate`` runs it. ``make test`` creates that environment first; a test that finds it
missing fails (never skips) with the command that creates it.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKOV_VENV = REPO_ROOT / ".venv-checkov"
CHECKOV_PYTHON = CHECKOV_VENV / "bin" / "python"
CHECKOV = CHECKOV_VENV / "bin" / "checkov"
TIMEOUT_SECONDS = 600


class CheckovEnvironmentMissing(AssertionError):
    def __init__(self) -> None:
        super().__init__(f"{CHECKOV_VENV} is missing or incomplete: run `make checkov-env` (make test does it first)")


def require_checkov_environment() -> None:
    if not (CHECKOV_PYTHON.is_file() and CHECKOV.is_file()):
        raise CheckovEnvironmentMissing()


@dataclass
class GateRun:
    exit_code: int
    stdout: str
    stderr: str
    summary: dict[str, Any] | None
    reports_dir: Path

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def failures(self) -> set[tuple[str, str, str]]:
        """(check id, stack, resource) of every failed check."""
        return {(f["check_id"], f["stack"], f["resource"]) for f in (self.summary or {}).get("failures", [])}

    def problem_kinds(self) -> list[tuple[str, str | None]]:
        return [(p["kind"], p["stack"]) for p in (self.summary or {}).get("problems", [])]

    def stack(self, name: str) -> dict[str, Any]:
        return next(s for s in (self.summary or {})["stacks"] if s["name"] == name)


def run_gate(out_dir: Path, reports_dir: Path, *arguments: str) -> GateRun:
    """``python -m tools.gate --out <out_dir> --reports <reports_dir> [arguments]`` from the repository root."""
    require_checkov_environment()
    completed = subprocess.run(
        [str(CHECKOV_PYTHON), "-m", "tools.gate", "--out", str(out_dir), "--reports", str(reports_dir),
         *arguments],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    summary_path = reports_dir / "gate-summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    return GateRun(completed.returncode, completed.stdout, completed.stderr, summary, reports_dir)


def run_checkov(directory: Path, *arguments: str) -> tuple[int, dict[str, Any]]:
    """Plain checkov (no gate) over a folder, JSON output: to show the traps the gate exists for."""
    require_checkov_environment()
    completed = subprocess.run(
        [str(CHECKOV), "--framework", "terraform_json", "--skip-download", "--directory", str(directory),
         "--output", "json", *arguments],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    return completed.returncode, json.loads(completed.stdout)


@dataclass
class GateBatch:
    """A gate process over several synthesized folders, started and not yet read: tests start it early so that
    checkov runs on the machine's other core while they go on, then read it with ``finish``."""

    process: subprocess.Popen
    out_dirs: list[Path]
    reports_dir: Path

    def finish(self) -> list[GateRun]:
        """Wait for the gate; a GateRun per folder, with its own summary (``<reports>/<n>``) and the part of the
        output that is its summary."""
        try:
            stdout, stderr = self.process.communicate(timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        sections = stdout.split("Policy gate: checkov")[1:]
        runs = []
        for number in range(len(self.out_dirs)):
            folder = self.reports_dir / str(number) if len(self.out_dirs) > 1 else self.reports_dir
            summary_path = folder / "gate-summary.json"
            summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
            own_stdout = "Policy gate: checkov" + sections[number] if number < len(sections) else stdout
            verdict = (summary or {}).get("verdict")
            exit_code = self.process.returncode if verdict is None else 0 if verdict == "pass" else 1
            runs.append(GateRun(exit_code, own_stdout, stderr, summary, folder))
        return runs


def start_gate_many(out_dirs: list[Path], reports_dir: Path, *arguments: str) -> GateBatch:
    """Start one gate process over several synthesized folders (one checkov run); read it with ``finish``."""
    require_checkov_environment()
    outs = [argument for out in out_dirs for argument in ("--out", str(out))]
    process = subprocess.Popen(
        [str(CHECKOV_PYTHON), "-m", "tools.gate", *outs, "--reports", str(reports_dir), *arguments],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return GateBatch(process, list(out_dirs), reports_dir)
