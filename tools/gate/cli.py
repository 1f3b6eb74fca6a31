"""``python -m tools.gate``: gate a synthesized folder. Exit 0 when it passes, 1 when it fails, 2 when it could
not run (no checkov environment, no synth output, a policies file it refuses)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
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
    parser.add_argument("--out", type=Path, action="append",
                        help="synthesized folder with manifest.json and stacks/ (default: cdktf.out); repeat it to "
                             "gate several folders with one checkov run, each with its own verdict and reports "
                             "in <reports>/<n>")
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
    args = parser.parse_args(argv)
    args.out = args.out or [Path("cdktf.out")]
    return args


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


def _secret_results(policies: policy.Policies, prepared: list[stacks.PreparedStack], records: list[dict],
                    files: dict[str, dict[str, str]]) -> list[JoinedResult]:
    """The secrets scan's findings on this folder's stacks, named by the resource whose text held them."""
    by_folder = {p.scan_file.parent.name: p for p in prepared}
    results = []
    for record in records:
        parts = [part for part in str(record.get("file_path", "")).replace("\\", "/").split("/") if part]
        stack = by_folder.get(parts[-2]) if len(parts) >= 2 else None
        address = files.get(parts[-2], {}).get(parts[-1]) if stack else None
        if stack is None or address is None:
            continue
        check_id, name = str(record.get("check_id")), str(record.get("check_name") or "")
        lines = record.get("file_line_range") or []
        results.append(JoinedResult(
            stack=stack.stack.name, check_id=check_id, check_name=name, resource=address, passed=False,
            why=policies.why.get(check_id, name),
            details=(f"{name} in {'values' if address.startswith('helm_release.') else 'its data'}"
                     f"{f' (line {lines[0]} of that document)' if lines else ''}",)))
    return results


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    started = time.monotonic()
    # A run that stops early must not leave a previous run's reports behind to be read as this run's.
    for folder in {args.reports, *_report_folders(args)}:
        for name in REPORT_FILES:
            (folder / name).unlink(missing_ok=True)
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


def _report_folders(args: argparse.Namespace) -> list[Path]:
    """Where each folder's reports go: ``--reports`` itself for one folder, ``<reports>/<n>`` for several."""
    if len(args.out) == 1:
        return [args.reports]
    return [args.reports / str(number) for number in range(len(args.out))]


@dataclass
class _Folder:
    """One synthesized folder being gated: the stacks gated, their prepared copies, what failed before checkov."""

    out: Path
    reports: Path
    gated: list[stacks.Stack]
    prepared: list[stacks.PreparedStack]
    problems: list[Problem]
    viewers: dict[str, set[str]]


def _collect(args: argparse.Namespace, out: Path, reports: Path, scan_root: Path,
             cache: dict[str, stacks.PreparedStack], environments: list | None) -> _Folder:
    manifest_stacks = stacks.read_manifest(out)
    if environments is None:
        gated, problems, viewers = manifest_stacks, [], {}
        for path in stacks.unlisted_stack_files(out, manifest_stacks):
            print(f"note: {_display(path)} is not in manifest.json and is not gated")
    else:
        gated, problems = expected.stacks_to_gate(out, manifest_stacks, expected.expected_names(environments))
        viewers = expected.viewer_principals(environments)
    prepared = []
    for stack in gated:
        try:
            prepared.append(stacks.prepare(stack, scan_root, cache))
        except GateError as error:
            problems.append(Problem("missing-stack", str(error), stack.name))
    return _Folder(out, reports, gated, prepared, problems, viewers)


def _gate(args: argparse.Namespace, scratch: Path, started: float) -> int:
    policies = policy.load(args.policies, args.environments)
    if not args.checkov.is_file():
        raise GateError(f"checkov not found at {args.checkov}: run 'make checkov-env' to create .venv-checkov")
    # One checkov run: terraform_json over stacks/, the secrets framework over secrets/.
    scan_root = scratch / "scan"
    stacks_root, secrets_root = scan_root / "stacks", scan_root / "secrets"
    stacks_root.mkdir(parents=True)
    # Several folders share one checkov run: a prepared stack identical in two folders is one scan folder.
    cache: dict[str, stacks.PreparedStack] = {}
    environments = None if args.manifest_stacks else expected.environments(args.environments)
    folders = [_collect(args, out, reports, stacks_root, cache, environments)
               for out, reports in zip(args.out, _report_folders(args), strict=True)]

    # checkov.yaml names the checks folder relative to the project root, the folder that holds policies/.
    project_root = args.policies.resolve().parent
    secret_files: dict[str, dict[str, str]] = {}
    for prepared in (p for folder in folders for p in folder.prepared):
        if prepared.scan_file.parent.name not in secret_files:
            secret_files[prepared.scan_file.parent.name] = stacks.write_secret_scan_files(prepared, secrets_root)
    scanned = any(folder.prepared for folder in folders)
    run = scan.run(args.checkov, policies, scan_root, scratch, cwd=project_root, data_dir=DATA_DIR) \
        if scanned else None
    passed = True
    # One folder's reports are indented for people; several folders (the tests' mutants) get compact ones, which
    # the json module writes ten times faster.
    indent = 2 if len(folders) == 1 else None
    for folder in folders:
        own = run.restricted_to({p.scan_file.parent.name for p in folder.prepared}) if run else None
        joined = [*_joined_results(policies, folder.prepared, folder.viewers),
                  *_secret_results(policies, folder.prepared, own.secret_records if own else [], secret_files)]
        verdict = decide(folder.gated, folder.prepared, own, policies, _display, folder.problems, joined)
        seconds = time.monotonic() - started
        summary_path, sarif_path = (folder.reports / name for name in REPORT_FILES[:2])
        report.write(summary_path, report.summary_json(verdict, out_dir=_display(folder.out), seconds=seconds),
                     indent=indent)
        report.write(sarif_path, report.sarif(verdict, manifest_path=_display(folder.out / "manifest.json")),
                     indent=indent)
        print(report.summary_text(verdict, out_dir=_display(folder.out), seconds=seconds,
                                  report_paths=[_display(summary_path), _display(sarif_path)]))
        passed = passed and verdict.passed
    if run is not None:  # checkov's own output, once for all folders
        report.write(args.reports / REPORT_FILES[2], run.raw, indent=None)
        (args.reports / REPORT_FILES[3]).write_text(run.stderr, encoding="utf-8")
    return EXIT_PASSED if passed else EXIT_FAILED
