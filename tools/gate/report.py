"""What the gate tells: a summary for people, ``gate-summary.json`` for tools, ``gate.sarif`` for GitHub code
scanning (failures as errors, skipped checks as suppressed results carrying their reason)."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tools.gate.verdict import FAILED, SKIPPED, Result, Verdict

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "platform-policy-gate"


def summary_text(verdict: Verdict, *, out_dir: str, seconds: float, report_paths: list[str]) -> str:
    lines = [f"Policy gate: checkov {verdict.checkov_version or '?'} over {len(verdict.stacks)} stack(s) of "
             f"{out_dir} ({seconds:.1f} s)", ""]
    width = max([len(s.name) for s in verdict.stacks] + [5])
    lines.append(f"  {'stack':<{width}}  resources  passed  failed  skipped")
    for s in verdict.stacks:
        lines.append(f"  {s.name:<{width}}  {s.resources:>9}  {s.passed:>6}  {s.failed:>6}  {s.skipped:>7}")

    failures = verdict.failures
    if failures:
        lines += ["", f"Failed checks ({len(failures)}):"]
        by_check: dict[str, list[Result]] = defaultdict(list)
        for result in failures:
            by_check[result.check_id].append(result)
        for check_id, results in sorted(by_check.items()):
            lines.append(f"  {check_id}: {results[0].check_name}")
            lines.append(f"    why it matters: {results[0].why}")
            for r in results:
                where = f"{r.source_file}:{r.source_line}" if r.source_line else r.source_file
                construct = f" [{r.construct_path}]" if r.construct_path else ""
                lines.append(f"    FAILED {check_id} {r.stack} {r.resource}{construct} ({where})")
                lines += [f"        - {d}" for d in r.details]

    used = [(skip, count) for skip, count in verdict.skips if count]
    unused = [skip for skip, count in verdict.skips if not count]
    if used:
        lines += ["", "Skipped checks (policies/skips.yaml; failures waived):"]
        for skip, count in used:
            lines.append(f"  SKIPPED {skip.check_id} ({skip.scope}; {count} result(s)): {skip.reason}")
    if unused:
        lines += ["", f"Skips that waived nothing in this run: {', '.join(s.check_id for s in unused)}"]

    if verdict.problems:
        lines += ["", f"Gate problems ({len(verdict.problems)}):"]
        for p in verdict.problems:
            lines.append(f"  [{p.kind}] {p.stack + ': ' if p.stack else ''}{p.message}")

    notes = [(s.name, n) for s in verdict.stacks for n in s.notes]
    if notes:
        lines += ["", "Prepared for scanning:"]
        lines += [f"  {name}: {note}" for name, note in notes]

    if report_paths:
        lines += ["", f"Reports: {', '.join(report_paths)}"]
    passed = sum(s.passed for s in verdict.stacks)
    skipped = sum(s.skipped for s in verdict.stacks)
    if verdict.passed:
        lines.append(f"GATE PASSED: {passed} passed, 0 failed, {skipped} skipped in {len(verdict.stacks)} stack(s)")
    else:
        lines.append(f"GATE FAILED: {len(failures)} failed check(s), {len(verdict.problems)} gate problem(s) "
                     f"({passed} passed, {skipped} skipped)")
    return "\n".join(lines)


def summary_json(verdict: Verdict, *, out_dir: str, seconds: float) -> dict[str, Any]:
    return {
        "verdict": "pass" if verdict.passed else "fail",
        "checkov_version": verdict.checkov_version,
        "out_dir": out_dir,
        "seconds": round(seconds, 2),
        "stacks": [asdict(s) for s in verdict.stacks],
        "failures": [asdict(r) for r in verdict.failures],
        "problems": [asdict(p) for p in verdict.problems],
        "skips": [{"id": s.check_id, "reason": s.reason, "tiers": list(s.tiers), "stacks": list(s.stacks),
                   "resources": list(s.resources), "results": n}
                  for s, n in verdict.skips],
        "results": [{"stack": r.stack, "check_id": r.check_id, "resource": r.resource, "outcome": r.outcome}
                    for r in verdict.results],
    }


def _location(source_file: str | None, line: int | None) -> dict[str, Any]:
    uri = source_file or "manifest.json"
    # Inside the repository: relative to its root, as code scanning expects; elsewhere an absolute file URI.
    relative = not Path(uri).is_absolute()
    artifact = {"uri": uri, "uriBaseId": "%SRCROOT%"} if relative else {"uri": Path(uri).as_uri()}
    return {"physicalLocation": {"artifactLocation": artifact, "region": {"startLine": line or 1}}}


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def sarif(verdict: Verdict, *, manifest_path: str) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []

    def rule_index(rule_id: str, name: str, why: str) -> int:
        if rule_id not in rules:
            rules[rule_id] = {"id": rule_id, "name": rule_id, "shortDescription": {"text": name or rule_id},
                              "fullDescription": {"text": why or name or rule_id}, "help": {"text": why or name},
                              "defaultConfiguration": {"level": "error"},
                              "properties": {"tags": ["security", "terraform", "checkov"]}}
        return list(rules).index(rule_id)

    for r in verdict.results:
        if r.outcome not in (FAILED, SKIPPED):
            continue
        text = f"{r.check_name}: {r.resource} in stack {r.stack}"
        if r.details:
            text += f" ({'; '.join(r.details)})"
        text += f". Why it matters: {r.why}"
        location = _location(r.source_file, r.source_line)
        location["logicalLocations"] = [{"name": r.resource, "fullyQualifiedName": f"{r.stack}/{r.resource}",
                                         "kind": "resource"}]
        entry: dict[str, Any] = {
            "ruleId": r.check_id, "ruleIndex": rule_index(r.check_id, r.check_name, r.why), "level": "error",
            "message": {"text": text}, "locations": [location],
            "partialFingerprints": {"gateResult/v1": _fingerprint(r.stack, r.check_id, r.resource)}}
        if r.outcome == SKIPPED:
            entry["suppressions"] = [{"kind": "external", "justification": r.skip_reason or ""}]
        results.append(entry)

    stack_files = {s.name: s.source_file for s in verdict.stacks}
    for p in verdict.problems:
        rule_id = "GATE_" + p.kind.upper().replace("-", "_")
        results.append({
            "ruleId": rule_id, "ruleIndex": rule_index(rule_id, f"Policy gate: {p.kind}", p.message),
            "level": "error", "message": {"text": f"{p.stack + ': ' if p.stack else ''}{p.message}"},
            "locations": [_location(stack_files.get(p.stack or "", manifest_path), None)],
            "partialFingerprints": {"gateResult/v1": _fingerprint(p.stack or "", p.kind, p.message)}})

    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": TOOL_NAME, "version": verdict.checkov_version or "unknown",
                            "informationUri": "https://www.checkov.io/", "rules": list(rules.values())}},
        "automationDetails": {"id": f"{TOOL_NAME}/"},
        "results": results}]}


def write(path: Path, document: Any, *, indent: int | None = 2) -> None:
    """``indent=None`` for large machine-read files: the json module's C encoder runs only without indentation."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=indent) + "\n", encoding="utf-8")
