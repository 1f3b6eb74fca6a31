"""The synth diff for people (Markdown for pull-request comments, plain text for terminals) and for programs (JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from tools.synth_diff import capacity
from tools.synth_diff.diff import Change, Replacement, Resource, StackDiff, SynthDiff

FORMATS = ("markdown", "text", "json")
#: At most this many changed attribute paths are listed per resource.
MAX_PATHS = 12


def render(diff: SynthDiff, fmt: str, *, base_label: str = "base", head_label: str = "head") -> str:
    if fmt == "markdown":
        return render_markdown(diff, base_label=base_label, head_label=head_label)
    if fmt == "text":
        return render_text(diff, base_label=base_label, head_label=head_label)
    if fmt == "json":
        return json.dumps(to_json(diff, base_label=base_label, head_label=head_label), indent=2) + "\n"
    raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")


def _paths(paths: Sequence[str]) -> list[str]:
    shown = list(paths[:MAX_PATHS])
    if len(paths) > MAX_PATHS:
        shown.append(f"... {len(paths) - MAX_PATHS} more")
    return shown


def _has_details(change: Change) -> bool:
    return bool(change.values or change.added_entries or change.removed_entries or change.reordered)


def _values(change: Change) -> list[str]:
    """An added or removed list entry as one line, then ``path: old -> new`` per changed attribute (paths only for
    a change made without values)."""
    if not _has_details(change):
        return _paths(change.attributes)
    return _paths([*[f"+ {entry}" for entry in change.added_entries],
                   *[f"- {entry}" for entry in change.removed_entries],
                   *[f"{path}: order of entries changed" for path in change.reordered],
                   *[f"{path}: {old} -> {new}" for path, old, new in change.values]])


def _change_md(change: Change) -> list[str]:
    if not _has_details(change):
        return [f"`{p}`" for p in _paths(change.attributes)]
    return _paths([*[f"added `{entry}`" for entry in change.added_entries],
                   *[f"removed `{entry}`" for entry in change.removed_entries],
                   *[f"`{path}` order of entries changed" for path in change.reordered],
                   *[f"`{path}` {_code(old)} → {_code(new)}" for path, old, new in change.values]])


def _counts(stack: StackDiff) -> str:
    parts = [f"{len(stack.added)} added", f"{len(stack.removed)} removed", f"{len(stack.changed)} changed"]
    for count, word in ((len(stack.replaced), "replaced"), (len(stack.moved), "moved"),
                        (len(stack.forgotten), "forgotten")):
        if count:
            parts.append(f"{count} {word}")
    if stack.settings:
        parts.append("settings changed")
    return ", ".join(parts)


def _content(replacement: Replacement) -> str:
    if replacement.identical:
        return "identical content"
    alike = round(replacement.similarity * 100)
    return f"nearly the same ({alike}% alike): {', '.join(_paths(replacement.attributes))}"


def _headline(diff: SynthDiff) -> tuple[str, list[str]]:
    changed = [s for s in diff.stacks if s.has_changes]
    summary = f"{len(changed)} of {len(diff.stacks)} stacks change" if changed else \
        f"No stack changes ({len(diff.stacks)} compared)"
    warnings = []
    if diff.destroyed_stateful:
        warnings.append(f"{len(diff.destroyed_stateful)} stateful resource(s) would be destroyed")
    if diff.replacements:
        warnings.append(f"{len(diff.replacements)} resource(s) would be replaced because their construct id changed")
    if diff.cross_stack_moves:
        warnings.append(f"{len(diff.cross_stack_moves)} resource(s) move between stacks (destroyed and recreated)")
    if diff.orphaned_stateful:
        warnings.append(f"{len(diff.orphaned_stateful)} stateful resource(s) are left unmanaged by a removed stack")
    backend = [s.name for s in diff.stacks if any(p.startswith("terraform.backend") for p in s.settings)]
    if backend:
        warnings.append(f"the state location of {', '.join(backend)} changes: Terraform would start from an empty "
                        "state there (migrate with `terraform init -migrate-state`)")
    return summary, warnings


# --- Markdown ----------------------------------------------------------------------------------------------------

def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _resource_md(resource: Resource) -> str:
    return f"`{resource.type}` {_code(resource.label)}"


def render_markdown(diff: SynthDiff, *, base_label: str = "base", head_label: str = "head") -> str:
    summary, warnings = _headline(diff)
    lines = [f"### Synth diff: `{base_label}` → `{head_label}`", ""]
    status = {"added": " (new stack)", "removed": " (removed stack)"}
    changed = [s for s in diff.stacks if s.has_changes]
    names = ", ".join(f"`{s.name}`{status.get(s.status, '')}" for s in changed)
    lines += [f"**{summary}**" + (f": {names}" if names else "."), ""]
    if warnings:
        lines += ["> [!WARNING]", *[f"> - **{w}**" for w in warnings], ""]

    if diff.destroyed_stateful:
        lines += ["#### Stateful resources that would be destroyed", "",
                  "| stack | resource | why | what is lost |", "|---|---|---|---|"]
        lines += [f"| `{loss.stack}` | {_resource_md(loss.resource)} | {_cell(loss.reason)} | {_cell(loss.loses)} |"
                  for loss in diff.destroyed_stateful]
        lines.append("")
    if diff.replacements:
        lines += ["#### Replaced because the construct id changed", "",
                  "Terraform destroys the old address and creates the new one. Keep the construct id, or have cdktf "
                  "write a `moved` block (`move_from_id(\"<old address>\")` on the new resource) so Terraform keeps "
                  "the real resource.", "",
                  "| stack | type | old → new | content |", "|---|---|---|---|"]
        lines += [f"| `{stack}` | `{r.old.type}` | `{r.old.label}` → `{r.new.label}` | {_cell(_content(r))} |"
                  for stack, r in diff.replacements]
        lines.append("")
    if diff.cross_stack_moves:
        lines += ["#### Moves between stacks", "",
                  "Each state sees a destroy and a create: move the state (`terraform state mv` / `import` with a "
                  "`removed` block) before applying.", "",
                  "| type | from | to |", "|---|---|---|"]
        lines += [f"| `{m.old.type}` | `{m.old_stack}` {_code(m.old.label)} | `{m.new_stack}` {_code(m.new.label)} |"
                  for m in diff.cross_stack_moves]
        lines.append("")
    if diff.orphaned_stateful:
        lines += ["#### Stateful resources of removed stacks (left in AWS, unmanaged)", "",
                  "| stack | resource | note |", "|---|---|---|"]
        lines += [f"| `{loss.stack}` | {_resource_md(loss.resource)} | {_cell(loss.reason)} |"
                  for loss in diff.orphaned_stateful]
        lines.append("")
    lines += capacity.markdown_lines(diff.capacity)

    for stack in changed:
        lines += [f"<details><summary><code>{stack.name}</code>: {_counts(stack)}</summary>", ""]
        lines += _stack_lines_md(stack)
        lines += ["", "</details>", ""]
    unchanged = [s.name for s in diff.stacks if not s.has_changes]
    if unchanged:
        lines += [f"Unchanged: {', '.join(f'`{n}`' for n in unchanged)}", ""]
    return "\n".join(lines).rstrip() + "\n"


def _stack_lines_md(stack: StackDiff) -> list[str]:
    lines = []
    lines += [f"- added {_resource_md(r)}" for r in stack.added]
    lines += [f"- removed {_resource_md(r)}" for r in stack.removed]
    lines += [f"- replaced `{r.old.type}` `{r.old.label}` → `{r.new.label}` ({_content(r)})" for r in stack.replaced]
    lines += [f"- moved (`moved` block) `{m.old.type}` `{m.old.label}` → `{m.new.label}`" for m in stack.moved]
    lines += [f"- forgotten (`removed` block, not destroyed) {_resource_md(r)}" for r in stack.forgotten]
    lines += [f"- changed {_resource_md(c.resource)}: {', '.join(_change_md(c))}" for c in stack.changed]
    if stack.settings:
        lines.append(f"- settings: {', '.join(f'`{p}`' for p in _paths(stack.settings))}")
    return lines


# --- plain text --------------------------------------------------------------------------------------------------

def render_text(diff: SynthDiff, *, base_label: str = "base", head_label: str = "head") -> str:
    summary, warnings = _headline(diff)
    lines = [f"Synth diff {base_label} -> {head_label}: {summary}"]
    lines += [f"WARNING: {w}" for w in warnings]
    for loss in diff.destroyed_stateful:
        lines.append(f"  DESTROYED {loss.stack}: {loss.resource.type} {loss.resource.label}: {loss.reason} "
                     f"(loses {loss.loses})")
    for stack, r in diff.replacements:
        lines.append(f"  REPLACED {stack}: {r.old.type} {r.old.label} -> {r.new.label}: {_content(r)}")
    for m in diff.cross_stack_moves:
        lines.append(f"  MOVES {m.old.type} {m.old_stack}:{m.old.label} -> {m.new_stack}:{m.new.label}")
    for loss in diff.orphaned_stateful:
        lines.append(f"  ORPHANED {loss.stack}: {loss.resource.type} {loss.resource.label}: {loss.reason}")
    lines += capacity.text_lines(diff.capacity)
    for stack in diff.stacks:
        if not stack.has_changes:
            continue
        lines += ["", f"{stack.name} ({stack.status}): {_counts(stack)}"]
        lines += [f"  + {r.type} {r.label}" for r in stack.added]
        lines += [f"  - {r.type} {r.label}" for r in stack.removed]
        lines += [f"  -/+ {r.old.type} {r.old.label} -> {r.new.label} ({_content(r)})" for r in stack.replaced]
        lines += [f"  => {m.old.type} {m.old.label} -> {m.new.label} (moved block)" for m in stack.moved]
        lines += [f"  x {r.type} {r.label} (removed block: forgotten, not destroyed)" for r in stack.forgotten]
        for change in stack.changed:
            lines.append(f"  ~ {change.resource.type} {change.resource.label}")
            lines += [f"      {p}" for p in _values(change)]
        if stack.settings:
            lines.append("  ~ settings")
            lines += [f"      {p}" for p in _paths(stack.settings)]
    unchanged = [s.name for s in diff.stacks if not s.has_changes]
    if unchanged:
        lines += ["", f"Unchanged: {', '.join(unchanged)}"]
    return "\n".join(lines) + "\n"


# --- JSON --------------------------------------------------------------------------------------------------------

def _resource_json(resource: Resource) -> dict:
    return {"address": resource.address, "type": resource.type, "path": resource.path}


def to_json(diff: SynthDiff, *, base_label: str = "base", head_label: str = "head") -> dict:
    return {
        "base": base_label,
        "head": head_label,
        "changed_stacks": diff.changed_stacks,
        "stacks": {s.name: {
            "status": s.status,
            "added": [_resource_json(r) for r in s.added],
            "removed": [_resource_json(r) for r in s.removed],
            "changed": [{**_resource_json(c.resource), "attributes": list(c.attributes),
                         "values": [{"path": p, "base": old, "head": new} for p, old, new in c.values],
                         "added_entries": list(c.added_entries), "removed_entries": list(c.removed_entries),
                         "reordered": list(c.reordered)}
                        for c in s.changed],
            "replaced": [{"old": _resource_json(r.old), "new": _resource_json(r.new), "identical": r.identical,
                          "similarity": round(r.similarity, 3), "attributes": list(r.attributes)}
                         for r in s.replaced],
            "moved": [{"old": _resource_json(m.old), "new": _resource_json(m.new)} for m in s.moved],
            "forgotten": [_resource_json(r) for r in s.forgotten],
            "settings": s.settings,
        } for s in diff.stacks},
        "destroyed_stateful": [{"stack": loss.stack, **_resource_json(loss.resource), "reason": loss.reason}
                               for loss in diff.destroyed_stateful],
        "orphaned_stateful": [{"stack": loss.stack, **_resource_json(loss.resource), "reason": loss.reason}
                              for loss in diff.orphaned_stateful],
        "cross_stack_moves": [{"from_stack": m.old_stack, "from": _resource_json(m.old), "to_stack": m.new_stack,
                               "to": _resource_json(m.new)} for m in diff.cross_stack_moves],
        "capacity": capacity.to_json(diff.capacity),
    }
