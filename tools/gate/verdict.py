"""From checkov's records to the gate's verdict: each result attributed to its stack and resource, the skips of
policies/skips.yaml applied, and the ways the gate refuses to pass by accident."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tools.gate.policy import Policies, Skip
from tools.gate.scan import CheckovRun, scan_folder_of
from tools.gate.stacks import PreparedStack, Stack

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass(frozen=True)
class Result:
    stack: str
    check_id: str
    check_name: str
    resource: str
    outcome: str
    why: str
    details: tuple[str, ...] = ()
    construct_path: str | None = None
    source_file: str | None = None
    source_line: int | None = None
    skip_reason: str | None = None


@dataclass(frozen=True)
class Problem:
    """Something that fails the gate besides a failed check: a parsing error, a stack without results, ..."""

    kind: str
    message: str
    stack: str | None = None


@dataclass
class StackSummary:
    name: str
    source_file: str
    resources: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    stacks: list[StackSummary]
    results: list[Result]
    problems: list[Problem]
    skips: list[tuple[Skip, int]]
    checkov_version: str

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.outcome == FAILED]

    @property
    def passed(self) -> bool:
        return not self.failures and not self.problems


def _why(record: dict[str, Any], policies: Policies) -> str:
    check_id = str(record.get("check_id"))
    if check_id in policies.why:
        return policies.why[check_id]
    guideline = record.get("guideline")
    # Custom checks carry their why-it-matters line as guideline; built-ins a URL (or nothing offline).
    if isinstance(guideline, str) and guideline and not guideline.startswith("http"):
        return " ".join(guideline.split())
    return str(record.get("check_name") or "")


def _missing_graph_results(prepared: list[PreparedStack], results: list[Result],
                           policies: Policies) -> list[Problem]:
    """checkov silently drops a graph check's result when it cannot evaluate it (an attribute that is an
    unresolved reference): every resource a custom graph check targets must get a result."""
    seen = {(r.stack, r.check_id, r.resource) for r in results}
    missing = []
    for stack in prepared:
        for check_id, types in sorted(policies.graph_check_targets.items()):
            for address in stack.addresses:
                if address.split(".")[0] in types and (stack.stack.name, check_id, address) not in seen:
                    missing.append(Problem(
                        "no-result", f"{check_id} gave no result for {address}: checkov could not evaluate it "
                        "(an attribute that is an unresolved reference?); it must pass or fail", stack.stack.name))
    return missing


@dataclass(frozen=True)
class JoinedResult:
    """A result of a check the gate runs itself (policies/joined_checks.py), already attributed."""

    stack: str
    check_id: str
    check_name: str
    resource: str
    passed: bool
    why: str
    details: tuple[str, ...] = ()


def _backing_holds(skip: Skip, stack: str, raw: list[Result]) -> bool:
    """Each check the skip rests on gave a result in the stack, and none failed."""
    for check_id in skip.backed_by:
        outcomes = [r.outcome for r in raw if r.stack == stack and r.check_id == check_id]
        if not outcomes or FAILED in outcomes:
            return False
    return True


def decide(stacks: list[Stack], prepared: list[PreparedStack], run: CheckovRun | None, policies: Policies,
           display_path: Callable[[Path], str], problems: list[Problem],
           joined: list[JoinedResult] = ()) -> Verdict:
    """Classify every record of ``run`` and every result of the gate's own ``joined`` checks. ``stacks`` are
    the stacks gated, ``prepared`` those that could be copied for scanning; ``problems`` were found before the
    scan (a stack missing, extra or not JSON). ``display_path`` turns a stack's source path into the string the
    reports show."""
    by_folder = {p.scan_file.parent.name: p for p in prepared}
    by_name = {p.stack.name: p for p in prepared}
    summaries = {s.name: StackSummary(name=s.name, source_file=display_path(s.source)) for s in stacks}
    for p in prepared:
        summaries[p.stack.name].resources = len(p.addresses)
        summaries[p.stack.name].notes.extend(p.notes)
    not_prepared = {s.name for s in stacks} - {p.stack.name for p in prepared}
    raw: list[Result] = []
    problems = list(problems)

    shown = {p.stack.name: summaries[p.stack.name].source_file for p in prepared}

    def result(stack: PreparedStack, check_id: str, check_name: str, resource: str, outcome: str, why: str,
               details: tuple[str, ...]) -> Result:
        return Result(stack=stack.stack.name, check_id=check_id, check_name=check_name, resource=resource,
                      outcome=outcome, why=why, details=details, construct_path=stack.construct_paths.get(resource),
                      source_file=shown[stack.stack.name], source_line=stack.source_lines.get(resource))

    for record in run.records if run else []:
        folder = scan_folder_of(str(record.get("file_path", "")))
        stack = by_folder.get(folder or "")
        if stack is None:
            problems.append(Problem("unattributed-result",
                                    f"checkov reported {record.get('check_id')} on {record.get('file_path')}, "
                                    "which is no stack of the manifest"))
            continue
        line_range = record.get("file_line_range") or [0]
        resource = stack.scan_lines.get(line_range[0]) or str(record.get("resource"))
        check_id = str(record.get("check_id"))
        if record["result"] == SKIPPED:
            problems.append(Problem("unexpected-skip",
                                    f"checkov skipped {check_id} on {resource} by itself "
                                    f"({record.get('check_result', {}).get('suppress_comment')}): skips belong in "
                                    "policies/skips.yaml", stack.stack.name))
            continue
        raw.append(result(stack, check_id, str(record.get("check_name") or ""), resource, record["result"],
                          _why(record, policies), tuple(str(d) for d in record.get("details") or [])))
    for item in joined:
        if item.stack in by_name:
            raw.append(result(by_name[item.stack], item.check_id, item.check_name, item.resource,
                              PASSED if item.passed else FAILED, item.why, item.details))

    # A skip waives failures only (a check that passes under a skip still counts as passed), and a skip backed
    # by checks only while they hold in the stack.
    results: list[Result] = []
    skip_use: Counter[Skip] = Counter()
    for item in raw:
        skip = policies.skip_for(item.check_id, item.stack, item.resource) if item.outcome == FAILED else None
        if skip is not None and not _backing_holds(skip, item.stack, raw):
            item = replace(item, details=(*item.details, f"the skip of policies/skips.yaml does not apply: it rests "
                                                         f"on {', '.join(skip.backed_by)}, which do not pass here"))
            skip = None
        if skip is not None:
            skip_use[skip] += 1
            item = replace(item, outcome=SKIPPED, skip_reason=skip.reason)
        results.append(item)
        summary = summaries[item.stack]
        setattr(summary, item.outcome, getattr(summary, item.outcome) + 1)

    if run is not None:
        unparsed: set[str] = set()
        for path in run.parsing_errors:
            stack = by_folder.get(scan_folder_of(path) or "")
            if stack is not None:
                unparsed.add(stack.stack.name)
            shown = display_path(stack.stack.source) if stack else path
            problems.append(Problem("parsing-error", f"checkov could not parse {shown}: no check ran on it",
                                    stack.stack.name if stack else None))
        # checkov names files by absolute path or relative to the scanned folder (/<folder>/cdk.tf.json).
        scan_paths = {str(p.scan_file): display_path(p.stack.source) for p in prepared}
        scan_paths |= {f"/{p.scan_file.parent.name}/{p.scan_file.name}": display_path(p.stack.source)
                       for p in prepared}
        for error in run.errors:
            if error.startswith("Failed to parse template") and any(path in error for path in scan_paths):
                continue  # reported above as a parsing error
            for scan_path, shown in scan_paths.items():
                error = error.replace(scan_path, shown)
            problems.append(Problem("checkov-error", f"checkov logged an error: {error}"))
        parsed = [p for p in prepared if p.stack.name not in unparsed]
        problems.extend(_missing_graph_results(parsed, results, policies))
        for summary in summaries.values():
            if summary.name in not_prepared or summary.name in unparsed:
                continue
            if summary.passed + summary.failed + summary.skipped == 0:
                problems.append(Problem("missing-stack", "no checkov result at all for this stack (nothing scanned)",
                                        summary.name))
            elif summary.passed == 0:
                problems.append(Problem("no-passed-check", "not one check passed in this stack", summary.name))

    results.sort(key=lambda r: (r.stack, r.outcome != FAILED, r.check_id, r.resource))
    return Verdict(stacks=list(summaries.values()), results=results, problems=problems,
                   skips=[(s, skip_use[s]) for s in policies.skips], checkov_version=run.version if run else "")
