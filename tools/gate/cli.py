"""``python -m tools.gate``: gate a synthesized folder. Exit 0 when it passes, 1 when it fails, 2 when it could
not run (no checkov environment, no synth output, a policies file it refuses)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tools.gate import expected, policy, report, scan, stacks
from tools.gate.stacks import GateError
from tools.gate.verdict import JoinedResult, Problem, decide

REPO_ROOT = Path(__file__).resolve().parents[2]
#: platform_config's data files: the reviewed identities and namespaces some checks compare against.
DATA_DIR = REPO_ROOT / "platform_config" / "data"
EXIT_PASSED, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
REPORT_FILES = ("gate-summary.json", "gate.sarif", "checkov-results.json", "checkov.log")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.gate", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("cdktf.out"),
                        help="synthesized folder with manifest.json and stacks/ (default: cdktf.out)")
    parser.add_argument("--reports", type=Path, default=Path("reports"),
                        help="where gate-summary.json and gate.sarif go (default: reports)")
    parser.add_argument("--policies", type=Path, default=REPO_ROOT / "policies",
                        help="checkov.yaml, skips.yaml, why.yaml and checks/ (default: the repository's)")
    parser.add_argument("--environments", type=Path, default=policy.default_environments_dir(),
                        help="environment files: which stacks to expect (each environment times each of its "
                             "layers), each environment's tier (tier-scoped skips) and viewer principals; default: "
                             "$PLATFORM_ENV_DIR or environments/, as for the synth")
    parser.add_argument("--checkov", type=Path,
                        default=Path(os.environ.get("GATE_CHECKOV", REPO_ROOT / ".venv-checkov" / "bin" / "checkov")),
                        help="the checkov executable (default: .venv-checkov/bin/checkov, or $GATE_CHECKOV)")
    parser.add_argument("--manifest-stacks", action="store_true",
                        help="gate the stacks manifest.json lists instead of the expected ones: for hand-made "
                             "fixture folders that are no synth of environments/, never for a synth")
    parser.add_argument("--keep-scratch", action="store_true",
                        help="keep the prepared copies and checkov's raw output, and print where they are")
    return parser.parse_args(argv)


def _display(path: Path) -> str:
    """A path as reports show it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def _joined_results(policies: policy.Policies, prepared: list[stacks.PreparedStack],
                    viewers: dict[str, set[str]]) -> list[JoinedResult]:
    if policies.joined is None:
        return []
    documents = {p.stack.name: p.document for p in prepared}
    try:
        findings = policies.joined.run(documents, viewers, DATA_DIR)
    except Exception as error:  # a crashing check must stop the gate, never pass it
        raise GateError(f"policies/joined_checks.py failed: {type(error).__name__}: {error}") from None
    return [JoinedResult(stack=f.stack, check_id=f.check.id, check_name=f.check.name, resource=f.resource,
                         passed=f.passed, why=f.check.why, details=tuple(f.details)) for f in findings]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    started = time.monotonic()
    # A run that stops early must not leave a previous run's reports behind to be read as this run's.
    for name in REPORT_FILES:
        (args.reports / name).unlink(missing_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="policy-gate-"))
    try:
        return _gate(args, scratch, started)
    except GateError as error:
        print(f"policy gate: cannot run: {error}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if args.keep_scratch:
            print(f"scratch kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def _gate(args: argparse.Namespace, scratch: Path, started: float) -> int:
    policies = policy.load(args.policies, args.environments)
    if not args.checkov.is_file():
        raise GateError(f"checkov not found at {args.checkov}: run 'make checkov-env' to create .venv-checkov")
    manifest_stacks = stacks.read_manifest(args.out)
    if args.manifest_stacks:
        gated, problems, viewers = manifest_stacks, [], {}
        for path in stacks.unlisted_stack_files(args.out, manifest_stacks):
            print(f"note: {_display(path)} is not in manifest.json and is not gated")
    else:
        environments = expected.environments(args.environments)
        gated, problems = expected.stacks_to_gate(args.out, manifest_stacks, expected.expected_names(environments))
        viewers = expected.viewer_principals(environments)

    scan_root = scratch / "stacks"
    scan_root.mkdir()
    prepared = []
    for index, stack in enumerate(gated):
        try:
            prepared.append(stacks.prepare(stack, scan_root, index))
        except GateError as error:
            problems.append(Problem("missing-stack", str(error), stack.name))

    # checkov.yaml names the checks folder relative to the project root, the folder that holds policies/.
    project_root = args.policies.resolve().parent
    run = scan.run(args.checkov, policies, scan_root, scratch, cwd=project_root,
                   data_dir=DATA_DIR) if prepared else None
    verdict = decide(gated, prepared, run, policies, _display, problems,
                     _joined_results(policies, prepared, viewers))
    seconds = time.monotonic() - started

    summary_path, sarif_path = (args.reports / name for name in REPORT_FILES[:2])
    report.write(summary_path, report.summary_json(verdict, out_dir=_display(args.out), seconds=seconds))
    report.write(sarif_path, report.sarif(verdict, manifest_path=_display(args.out / "manifest.json")))
    if run is not None:
        report.write(args.reports / REPORT_FILES[2], run.raw)
        (args.reports / REPORT_FILES[3]).write_text(run.stderr, encoding="utf-8")
    print(report.summary_text(verdict, out_dir=_display(args.out), seconds=seconds,
                              report_paths=[_display(summary_path), _display(sarif_path)]))
    return EXIT_PASSED if verdict.passed else EXIT_FAILED
