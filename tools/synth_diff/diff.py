"""What changes between two synthesized cdktf folders, stack by stack, as Terraform would see it.

``diff_synth_folders(base, head)`` is a pure function of two folders (``manifest.json`` and
``stacks/<stack>/cdk.tf.json`` each): no git, no synthesis, no AWS. It reports per stack the resources (and data
sources) added, removed and changed (with the changed attribute paths and their old and new values, cdktf's ``//``
metadata ignored; entries of lists that name them, Kubernetes objects and anything with a ``name``, ``id`` or
``key``, are matched by name, so a model deployment inserted in the middle reads as its objects added), and flags

- **replacements by construct id**: a resource removed and another of the same type added in the same stack with
  the same or nearly the same content. Its Terraform address comes from its construct id, so Terraform would
  destroy the old one and create the new one (a ``moved`` block, or keeping the id, avoids that);
- **moves between stacks**: the same, across two stacks of the same account (destroyed in one state, created in
  the other);
- **stateful resources that would be destroyed** (``stateful.STATEFUL_TYPES``): removed, replaced by a construct-id
  change or by an attribute that forces a new resource, or moved to another stack;
- **orphaned** stateful resources of stacks that are no longer synthesized (nothing destroys them: they stay in
  AWS, unmanaged);
- changes of a stack's backend or provider settings;
- the change in GPU capacity and on-demand cost of each environment (``capacity.py``), computed from each side's
  stacks alone.

References to a replaced resource (``${aws_x.old.id}`` -> ``${aws_x.new.id}``, ``depends_on`` entries, cdktf's
cross-stack output names) are compared after the rename, so the resources that merely point at a replaced one are
not listed as changed: the replacement is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.synth_diff.capacity import CapacityDiff, capacity_diff
from tools.synth_diff.stateful import STATEFUL_TYPES, is_stateful, replacing_attributes

#: Two resources whose flattened content agrees on at least this share of attribute paths are "nearly the same".
NEARLY_THE_SAME = 0.8
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_CROSS_STACK_OUTPUT = re.compile(r"cross-stack-output-[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Resource:
    """One resource or data source of a synthesized stack."""

    address: str  #: Terraform address, ``aws_s3_bucket.data_1A2B3C4D`` or ``data.aws_iam_policy.x``
    type: str
    path: str  #: construct path below the stack (``storage/bucket``), from cdktf's metadata; "" when absent
    body: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        """How a reviewer recognises it: the construct path if known, else the address."""
        return self.path or self.address

    @property
    def prevent_destroy(self) -> bool:
        return bool((self.body.get("lifecycle") or {}).get("prevent_destroy"))


@dataclass(frozen=True)
class Change:
    resource: Resource  #: the head side
    attributes: tuple[str, ...]
    #: (path, old value, new value) per changed attribute, each value as short JSON ("(absent)" when missing);
    #: none for the attributes inside an added or removed list entry.
    values: tuple[tuple[str, str, str], ...] = ()
    #: Paths of the named list entries that arrived or left (``...templates[Deployment inference/vllm-small]``).
    added_entries: tuple[str, ...] = ()
    removed_entries: tuple[str, ...] = ()
    #: Named lists whose entries, those on both sides, changed order.
    reordered: tuple[str, ...] = ()


@dataclass(frozen=True)
class Replacement:
    """A resource whose address changed while its content stayed the same (``attributes`` empty) or nearly."""

    old: Resource
    new: Resource
    similarity: float
    attributes: tuple[str, ...]

    @property
    def identical(self) -> bool:
        return not self.attributes


@dataclass(frozen=True)
class Move:
    """A ``moved`` block (no destroy) in the head stack."""

    old: Resource
    new: Resource


@dataclass(frozen=True)
class CrossStackMove:
    old_stack: str
    old: Resource
    new_stack: str
    new: Resource
    similarity: float


@dataclass(frozen=True)
class StatefulLoss:
    stack: str
    resource: Resource
    reason: str

    @property
    def loses(self) -> str:
        return STATEFUL_TYPES[self.resource.type]


@dataclass
class StackDiff:
    name: str
    status: str  #: "added", "removed", "changed" or "unchanged"
    added: list[Resource] = field(default_factory=list)
    removed: list[Resource] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    replaced: list[Replacement] = field(default_factory=list)
    moved: list[Move] = field(default_factory=list)
    forgotten: list[Resource] = field(default_factory=list)  #: ``removed`` blocks with ``destroy = false``
    settings: list[str] = field(default_factory=list)  #: changed paths under ``terraform.`` and ``provider.``

    @property
    def has_changes(self) -> bool:
        return self.status != "unchanged"


@dataclass
class SynthDiff:
    stacks: list[StackDiff]
    cross_stack_moves: list[CrossStackMove]
    destroyed_stateful: list[StatefulLoss]
    orphaned_stateful: list[StatefulLoss]
    #: GPU capacity and on-demand cost of each environment on both sides (``capacity.capacity_diff``).
    capacity: CapacityDiff | None = None

    @property
    def changed_stacks(self) -> list[str]:
        """Stacks that Terraform would plan differently: added or changed (a removed stack has nothing to plan)."""
        return [s.name for s in self.stacks if s.status in ("added", "changed")]

    def stack(self, name: str) -> StackDiff:
        return next(s for s in self.stacks if s.name == name)

    @property
    def replacements(self) -> list[tuple[str, Replacement]]:
        return [(s.name, r) for s in self.stacks for r in s.replaced]


# --- reading synthesized folders ---------------------------------------------------------------------------------

def load_manifest(outdir: Path) -> dict[str, dict]:
    """The ``stacks`` entries of ``<outdir>/manifest.json``, by stack name."""
    manifest_file = Path(outdir) / "manifest.json"
    if not manifest_file.is_file():
        raise FileNotFoundError(f"{manifest_file} not found: not a synthesized cdktf folder")
    return json.loads(manifest_file.read_text())["stacks"]


def load_stacks(outdir: Path) -> dict[str, dict]:
    """Every stack's parsed ``cdk.tf.json``, by stack name."""
    return {name: json.loads((Path(outdir) / entry["synthesizedStackPath"]).read_text())
            for name, entry in load_manifest(outdir).items()}


def stack_resources(stack_name: str, stack: Mapping) -> dict[str, Resource]:
    """Resources and data sources of one parsed stack, by Terraform address."""
    found = {}
    for block, prefix in (("resource", ""), ("data", "data.")):
        for resource_type, items in (stack.get(block) or {}).items():
            for name, body in items.items():
                path = ((body.get("//") or {}).get("metadata") or {}).get("path", "")
                if path.startswith(f"{stack_name}/"):
                    path = path[len(stack_name) + 1:]
                address = f"{prefix}{resource_type}.{name}"
                found[address] = Resource(address, resource_type, path, body)
    return found


# --- flattening and comparing ------------------------------------------------------------------------------------

def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """Leaf values by attribute path (``scaling_config.max_size``, ``subnet_ids[1]``, ``labels["a/b"]``), without
    cdktf's ``//`` keys. JSON and YAML documents held in strings (policies, Helm values) are flattened too, their
    paths after a ``:`` (``policy:Statement[0].Action``). Entries of a list that names them (``entry_names``) are
    addressed by name, not position (``set[name=replicas].value``, ``templates[Deployment inference/vllm]:spec``)."""
    return Flattened.of(value, path).leaves


@dataclass(frozen=True)
class Flattened:
    """A value's leaves by path, the paths of its lists, and the named entries they hold: each entry's path and,
    per list, the order of its entries' names."""

    leaves: dict[str, Any]
    lists: frozenset[str]
    entries: frozenset[str]
    orders: dict[str, tuple[str, ...]]

    @classmethod
    def of(cls, value: Any, path: str = "", by_position: frozenset[str] = frozenset()) -> Flattened:
        """``by_position``: paths of lists whose entries are matched by position even when they name themselves."""
        found = cls({}, frozenset(), frozenset(), {})
        lists: set[str] = set()
        entries: set[str] = set()
        _flatten(value, path, _Collector(found.leaves, lists, entries, found.orders, by_position))
        return cls(found.leaves, frozenset(lists), frozenset(entries), found.orders)


@dataclass(frozen=True)
class _Collector:
    leaves: dict[str, Any]
    lists: set[str]
    entries: set[str]
    orders: dict[str, tuple[str, ...]]
    by_position: frozenset[str]


#: Fields that name a list entry, in the order tried after a Kubernetes object's kind, namespace and name.
ENTRY_NAME_FIELDS = ("name", "id", "key")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_./:@-]+$")


def _shown_name(name: Any) -> str:
    text = str(name)
    return text if _PLAIN_NAME.match(text) else json.dumps(text)


def _kubernetes_name(item: Mapping[str, Any]) -> str | None:
    metadata = item.get("metadata")
    if not (isinstance(item.get("kind"), str) and isinstance(metadata, dict) and isinstance(metadata.get("name"), str)):
        return None
    namespace = metadata.get("namespace")
    where = f"{_shown_name(namespace)}/" if isinstance(namespace, str) else ""
    return f"{_shown_name(item['kind'])} {where}{_shown_name(metadata['name'])}"


def entry_names(items: list) -> list[str] | None:
    """How each entry of a list is addressed in a path when the entries name themselves: a Kubernetes object by
    ``Kind namespace/name``, anything else by the first of ``ENTRY_NAME_FIELDS`` that every entry carries
    (``name=vllm``). None (match by position) when the entries are not all mappings or their names repeat."""
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    namers = [_kubernetes_name, *(
        lambda item, field=field: f"{field}={_shown_name(item[field])}"
        if isinstance(item.get(field), str | int) and not isinstance(item.get(field), bool) else None
        for field in ENTRY_NAME_FIELDS)]
    for namer in namers:
        names = [namer(item) for item in items]
        if None not in names and len(set(names)) == len(names):
            return names
    return None


def _join(path: str, key: str) -> str:
    if not _PLAIN_KEY.match(key):
        return f"{path}[{json.dumps(key)}]"
    return f"{path}{key}" if not path or path.endswith(":") else f"{path}.{key}"


def _flatten(value: Any, path: str, found: _Collector) -> None:
    if isinstance(value, dict):
        items = {k: v for k, v in value.items() if k != "//"}
        if not items:
            found.leaves[path] = {}
        for key, item in items.items():
            _flatten(item, _join(path, key), found)
    elif isinstance(value, list):
        found.lists.add(path)
        if not value:
            found.leaves[path] = []
        documents = [_embedded_document(item) if isinstance(item, str) else None for item in value]
        names = None if path in found.by_position else entry_names(
            [item if document is None else document for item, document in zip(value, documents, strict=True)])
        if names:
            found.orders[path] = tuple(names)
        for index, (item, document) in enumerate(zip(value, documents, strict=True)):
            entry = f"{path}[{names[index] if names else index}]"
            if names:
                found.entries.add(entry)
            if document is not None:
                _flatten(document, f"{entry}:", found)
            else:
                _flatten(item, entry, found)
    elif isinstance(value, str) and (document := _embedded_document(value)) is not None:
        _flatten(document, f"{path}:", found)
    else:
        found.leaves[path] = value


def _embedded_document(text: str) -> dict | list | None:
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            document = json.loads(stripped)
        except ValueError:
            document = None
        if isinstance(document, dict | list) and document:
            return document
    if "\n" in stripped and ":" in stripped and not stripped.startswith("${"):
        import yaml  # Helm values are YAML text; only multi-line strings are tried

        try:
            document = yaml.safe_load(stripped)
        except yaml.YAMLError:
            return None
        if isinstance(document, dict) and document:
            return document
    return None


#: How much of a value a diff line shows.
SHOWN_VALUE_LENGTH = 60


def shown_value(value: Any) -> str:
    """A value as a diff line shows it: compact JSON, cut to SHOWN_VALUE_LENGTH characters."""
    if value is _MISSING:
        return "(absent)"
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= SHOWN_VALUE_LENGTH else text[:SHOWN_VALUE_LENGTH - 3] + "..."


def changed_paths(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """Attribute paths whose value differs, was added or was removed, between two flattened bodies."""
    return tuple(sorted(p for p in old.keys() | new.keys() if old.get(p, _MISSING) != new.get(p, _MISSING)))


def similarity(old: Mapping[str, Any], new: Mapping[str, Any]) -> float:
    """The share of attribute paths (of both) that carry the same value in both."""
    paths = old.keys() | new.keys()
    if not paths:
        return 1.0
    return sum(1 for p in paths if p in old and p in new and old[p] == new[p]) / len(paths)


_MISSING = object()


def _map_strings(value: Any, replace) -> Any:
    if isinstance(value, str):
        return replace(value)
    if isinstance(value, dict):
        return {k: _map_strings(v, replace) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, replace) for v in value]
    return value


def _reference_mask(types: Iterable[str]):
    """A function that replaces resource names in references by a placeholder, so content compares by shape."""
    names = sorted(set(types), key=len, reverse=True)
    if not names:
        return lambda text: _CROSS_STACK_OUTPUT.sub("cross-stack-output-*", text)
    reference = re.compile(rf"(?<![\w-])((?:data\.)?(?:{'|'.join(map(re.escape, names))}))\.[A-Za-z0-9_-]+")

    def mask(text: str) -> str:
        return _CROSS_STACK_OUTPUT.sub("cross-stack-output-*", reference.sub(r"\1.*", text))
    return mask


def _renamer(renames: Mapping[str, str]):
    """A function that rewrites references to renamed addresses (and cdktf's cross-stack output names, which
    embed the address without its dots) to the new addresses."""
    if not renames:
        return lambda text: text
    pairs = {**renames, **{o.replace(".", ""): n.replace(".", "") for o, n in renames.items()}}
    pattern = re.compile("|".join(rf"(?<![\w-]){re.escape(o)}(?![\w-])" if "." in o else re.escape(o)
                                  for o in sorted(pairs, key=len, reverse=True)))

    def rename(text: str) -> str:
        return pattern.sub(lambda m: pairs[m.group(0)], text)
    return rename


# --- the diff ----------------------------------------------------------------------------------------------------

def diff_synth_folders(base: Path, head: Path) -> SynthDiff:
    """Compare two synthesized folders (``base`` before, ``head`` after)."""
    return diff_stacks(load_stacks(base), load_stacks(head), _dependents(load_manifest(head)))


def _dependents(manifest: Mapping[str, Mapping]) -> dict[str, set[str]]:
    dependents: dict[str, set[str]] = {}
    for name, entry in manifest.items():
        for dependency in entry.get("dependencies", []):
            dependents.setdefault(dependency, set()).add(name)
    return dependents


def diff_stacks(base: Mapping[str, Mapping], head: Mapping[str, Mapping],
                dependents: Mapping[str, set[str]] | None = None) -> SynthDiff:
    """Compare parsed stacks (stack name -> ``cdk.tf.json`` content). ``dependents`` (stack -> stacks that read
    its outputs) lets references through cross-stack outputs follow a rename."""
    dependents = dependents or {}
    names = sorted(base.keys() | head.keys())
    old_resources = {n: stack_resources(n, base[n]) for n in base}
    new_resources = {n: stack_resources(n, head[n]) for n in head}
    types = {r.type for side in (old_resources, new_resources) for rs in side.values() for r in rs.values()}
    mask = _reference_mask(types)
    diffs: dict[str, StackDiff] = {}
    leftovers_removed: list[tuple[str, Resource]] = []
    leftovers_added: list[tuple[str, Resource]] = []
    renames_of: dict[str, dict[str, str]] = {}

    # First pass: per stack, what left and what arrived, and which of those are renames (moved blocks, or
    # pairs of the same type and content).
    for name in names:
        old = old_resources.get(name, {})
        new = new_resources.get(name, {})
        status = "added" if name not in base else "removed" if name not in head else "changed"
        stack_diff = StackDiff(name, status)
        removed = {a: r for a, r in old.items() if a not in new}
        added = {a: r for a, r in new.items() if a not in old}
        renames: dict[str, str] = {}
        if status == "changed":
            for block in head[name].get("moved") or []:
                source, target = block.get("from"), block.get("to")
                if source in removed and target in added:
                    stack_diff.moved.append(Move(removed.pop(source), added.pop(target)))
                    renames[source] = target
            for block in head[name].get("removed") or []:
                source = block.get("from")
                if source in removed and (block.get("lifecycle") or {}).get("destroy") is False:
                    stack_diff.forgotten.append(removed.pop(source))
            for old_resource, new_resource, score in _pair(removed.values(), added.values(), mask):
                del removed[old_resource.address], added[new_resource.address]
                stack_diff.replaced.append(Replacement(old_resource, new_resource, score, ()))
                renames[old_resource.address] = new_resource.address
        stack_diff.removed = sorted(removed.values(), key=lambda r: r.address)
        stack_diff.added = sorted(added.values(), key=lambda r: r.address)
        leftovers_removed += [(name, r) for r in stack_diff.removed]
        leftovers_added += [(name, r) for r in stack_diff.added]
        renames_of[name] = renames
        diffs[name] = stack_diff

    # Second pass: attribute changes, with references to renamed resources rewritten on the old side.
    for name in names:
        stack_diff = diffs[name]
        if stack_diff.status != "changed":
            continue
        renames = dict(renames_of[name])
        for producer, consumers in dependents.items():
            if name in consumers:
                renames.update(renames_of.get(producer, {}))
        rename = _renamer(renames)
        old, new = old_resources[name], new_resources[name]
        for address in sorted(old.keys() & new.keys()):
            change = compare(new[address], _map_strings(dict(old[address].body), rename), dict(new[address].body))
            if change is not None:
                stack_diff.changed.append(change)
        stack_diff.replaced = [
            Replacement(r.old, r.new, r.similarity,
                        changed_paths(flatten(_map_strings(dict(r.old.body), rename)), flatten(dict(r.new.body))))
            for r in stack_diff.replaced]
        stack_diff.settings = _settings_changes(base[name], head[name])
        if not (stack_diff.added or stack_diff.removed or stack_diff.changed or stack_diff.replaced
                or stack_diff.moved or stack_diff.forgotten or stack_diff.settings):
            stack_diff.status = "unchanged"

    cross_moves = _cross_stack_moves(leftovers_removed, leftovers_added, base, head, mask)
    destroyed, orphaned = _stateful_losses(diffs, cross_moves)
    return SynthDiff([diffs[n] for n in names], cross_moves, destroyed, orphaned, capacity_diff(base, head))


def compare(resource: Resource, old_body: Mapping[str, Any], new_body: Mapping[str, Any]) -> Change | None:
    """How one resource changed (``resource`` is its head side), or None when it did not. A named list entry that
    arrived or left is one added or removed entry, not a change of each of its attributes. A list whose entries
    name themselves on one side only is compared by position on both."""
    by_position: frozenset[str] = frozenset()
    while True:
        before, after = Flattened.of(old_body, by_position=by_position), Flattened.of(new_body, by_position=by_position)
        named_on_one_side = (before.lists & after.lists) & (before.orders.keys() ^ after.orders.keys())
        if not named_on_one_side:
            break
        by_position |= named_on_one_side
    added = _outermost(after.entries - before.entries)
    removed = _outermost(before.entries - after.entries)
    reordered = tuple(sorted(
        path for path, names in after.orders.items() if path in before.orders
        and [n for n in names if n in before.orders[path]] != [n for n in before.orders[path] if n in names]))
    paths = changed_paths(before.leaves, after.leaves)
    inside = tuple(p for p in paths if not _within(p, (*added, *removed)))
    if not (paths or reordered):
        return None
    return Change(resource, tuple(sorted({*inside, *added, *removed, *reordered})), tuple(
        (path, shown_value(before.leaves.get(path, _MISSING)), shown_value(after.leaves.get(path, _MISSING)))
        for path in inside), added, removed, reordered)


def _within(path: str, entries: Iterable[str]) -> bool:
    return any(path == e or path.startswith((f"{e}.", f"{e}[", f"{e}:")) for e in entries)


def _outermost(entries: Iterable[str]) -> tuple[str, ...]:
    entries = sorted(entries)
    return tuple(e for e in entries if not _within(e, [o for o in entries if o != e]))


def _pair(removed: Iterable[Resource], added: Iterable[Resource], mask) -> list[tuple[Resource, Resource, float]]:
    """Greedy pairs of the same type, most similar first, at least ``NEARLY_THE_SAME`` alike."""
    removed_by_type: dict[str, list[tuple[Resource, dict]]] = {}
    for resource in removed:
        removed_by_type.setdefault(resource.type, []).append(
            (resource, flatten(_map_strings(dict(resource.body), mask))))
    candidates = []
    for resource in added:
        if resource.type not in removed_by_type:
            continue
        content = flatten(_map_strings(dict(resource.body), mask))
        for old_resource, old_content in removed_by_type[resource.type]:
            score = similarity(old_content, content)
            if score >= NEARLY_THE_SAME:
                candidates.append((-score, old_resource.address, resource.address, old_resource, resource))
    pairs, used = [], set()
    for negative_score, old_address, new_address, old_resource, new_resource in sorted(candidates,
                                                                                       key=lambda c: c[:3]):
        if old_address in used or new_address in used:
            continue
        used |= {old_address, new_address}
        pairs.append((old_resource, new_resource, -negative_score))
    return pairs


def _account_of(stack: Mapping) -> str:
    """What identifies a stack's account: the AWS provider's allowed accounts and region, else the backend."""
    providers = (stack.get("provider") or {}).get("aws") or []
    if providers:
        first = providers[0]
        return json.dumps([first.get("allowed_account_ids"), first.get("region")])
    return json.dumps((stack.get("terraform") or {}).get("backend"), sort_keys=True)


def _cross_stack_moves(removed: list[tuple[str, Resource]], added: list[tuple[str, Resource]],
                       base: Mapping, head: Mapping, mask) -> list[CrossStackMove]:
    moves = []
    accounts = {(stack, r.address): _account_of(base[stack]) for stack, r in removed}
    by_account: dict[str, list[tuple[str, Resource]]] = {}
    for stack, resource in added:
        by_account.setdefault(_account_of(head[stack]), []).append((stack, resource))
    for account, arrivals in by_account.items():
        departures = [(s, r) for s, r in removed if accounts[(s, r.address)] == account]
        stack_of = {id(r): s for s, r in departures + arrivals}
        for old_resource, new_resource, score in _pair([r for _, r in departures], [r for _, r in arrivals], mask):
            if stack_of[id(old_resource)] != stack_of[id(new_resource)]:
                moves.append(CrossStackMove(stack_of[id(old_resource)], old_resource, stack_of[id(new_resource)],
                                            new_resource, score))
    return sorted(moves, key=lambda m: (m.old_stack, m.old.address))


def _settings_changes(base: Mapping, head: Mapping) -> list[str]:
    paths: list[str] = []
    for block in ("terraform", "provider"):
        old = flatten(base.get(block) or {}, f"{block}")
        new = flatten(head.get(block) or {}, f"{block}")
        paths += changed_paths(old, new)
    return paths


def _stateful_losses(diffs: Mapping[str, StackDiff], cross_moves: list[CrossStackMove]
                     ) -> tuple[list[StatefulLoss], list[StatefulLoss]]:
    destination = {(m.old_stack, m.old.address): m.new_stack for m in cross_moves}
    destroyed, orphaned = [], []
    for name, stack_diff in diffs.items():
        if stack_diff.status == "removed":
            for resource in stack_diff.removed:
                if is_stateful(resource.type):
                    moved_to = destination.get((name, resource.address))
                    reason = ("stack no longer synthesized: nothing destroys it, it stays in AWS unmanaged"
                              + (f"; {moved_to} creates it again, which conflicts" if moved_to else ""))
                    orphaned.append(StatefulLoss(name, resource, reason))
            continue
        for resource in stack_diff.removed:
            if is_stateful(resource.type):
                moved_to = destination.get((name, resource.address))
                reason = (f"moves to stack {moved_to}: destroyed here, created empty there" if moved_to
                          else "removed from the stack")
                if resource.prevent_destroy:
                    reason += " (its prevent_destroy leaves with the removed block and does not stop this)"
                destroyed.append(StatefulLoss(name, resource, reason))
        for replacement in stack_diff.replaced:
            if is_stateful(replacement.old.type):
                destroyed.append(StatefulLoss(
                    name, replacement.old,
                    f"construct id changed ({replacement.old.address} -> {replacement.new.address}): replaced"))
        for change in stack_diff.changed:
            forcing = replacing_attributes(change.resource.type, change.attributes)
            if is_stateful(change.resource.type) and forcing:
                destroyed.append(StatefulLoss(
                    name, change.resource, f"{', '.join(forcing)} changed, which forces a new resource: replaced"))
    return destroyed, orphaned
