"""The change in GPU capacity and on-demand cost between two synthesized folders, per environment.

Each side is read from its stacks alone: the node groups (instance types, scaling), the GPU resources their Auto
Scaling groups advertise to the Cluster Autoscaler (node-template tags), their launch templates' root volumes, and
the fixed items (NAT gateways, endpoints, the database, load balancers, keys, secrets); see
``platform_config.report``. Both sides are priced with the working tree's catalogue and price table, so a base
revision is never imported and the change shows what the configuration changes, not what the prices did.
An environment is compared when both sides have node groups for it (a stack ``<env>-cluster``); one that only the
working tree has is a new environment, compared with nothing (0 GPUs, 0 USD), and one only the base has is removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from platform_config.report import (
    SCALES,
    EnvironmentReport,
    format_usd,
    load_prices,
    report_from_stacks,
    round_usd,
    stacks_by_environment,
)

CLUSTER_LAYER = "cluster"


@dataclass(frozen=True)
class Metric:
    """One compared number: ``base`` and ``head`` are ints (GPUs, units) or amounts (USD per month)."""

    name: str
    base: int | Decimal | None
    head: int | Decimal | None
    money: bool = False
    estimate: bool = False

    @property
    def changed(self) -> bool:
        return self.base != self.head

    @property
    def delta(self) -> int | Decimal | None:
        if self.base is None or self.head is None:
            return None
        return self.head - self.base

    def shown(self, value: int | Decimal | None) -> str:
        if value is None:
            return "?"
        if self.money:
            return ("~" if self.estimate else "") + format_usd(Decimal(value))
        return str(value)

    @property
    def shown_delta(self) -> str:
        delta = self.delta
        if delta is None:
            return "?"
        sign = "+" if delta > 0 else "-" if delta < 0 else "±"
        magnitude = format_usd(abs(Decimal(delta))) if self.money else str(abs(delta))
        return f"{'~' if self.money and self.estimate else ''}{sign}{magnitude}"


@dataclass(frozen=True)
class CapacityChange:
    environment: str
    #: None on the side that does not have the environment (a new or a removed environment).
    base: EnvironmentReport | None
    head: EnvironmentReport | None
    metrics: tuple[Metric, ...] = field(default=())

    @property
    def status(self) -> str:
        return "added" if self.base is None else "removed" if self.head is None else "compared"

    @property
    def label(self) -> str:
        suffix = {"added": " (new environment)", "removed": " (removed environment)"}.get(self.status, "")
        return f"{self.environment}{suffix}"

    @property
    def changed(self) -> bool:
        return any(m.changed for m in self.metrics)

    @property
    def changed_metrics(self) -> list[Metric]:
        return [m for m in self.metrics if m.changed]


@dataclass(frozen=True)
class CapacityDiff:
    prices_as_of: str
    region: str
    changes: tuple[CapacityChange, ...]
    error: str | None = None

    @property
    def changed(self) -> list[CapacityChange]:
        return [c for c in self.changes if c.changed]


def _metrics(base: EnvironmentReport | None, head: EnvironmentReport | None) -> tuple[Metric, ...]:
    """The compared numbers; a side without the environment counts as nothing (0 GPUs, 0 USD)."""
    def gpus(report, scale):
        return 0 if report is None else report.physical_gpus(scale)

    def units(report):
        return {} if report is None else report.schedulable("max")

    metrics = [Metric(f"physical GPUs at {s}", gpus(base, s), gpus(head, s)) for s in SCALES]
    for resource in sorted(set(units(base)) | set(units(head))):
        metrics.append(Metric(f"{resource} at max", units(base).get(resource, 0), units(head).get(resource, 0)))
    for scale in SCALES:
        old, new = (None if r is None else r.total(scale) for r in (base, head))
        estimate = any(t is not None and (t.estimate or bool(t.missing)) for t in (old, new))
        metrics.append(Metric(f"USD per month at {scale}", Decimal(0) if old is None else old.per_month,
                              Decimal(0) if new is None else new.per_month, money=True, estimate=estimate))
    return tuple(metrics)


def _environments(stacks: Mapping[str, Any]) -> list[str]:
    return sorted(name.removesuffix(f"-{CLUSTER_LAYER}") for name, stack in stacks.items()
                  if name.endswith(f"-{CLUSTER_LAYER}") and (stack.get("resource") or {}).get("aws_eks_node_group"))


def capacity_diff(base: Mapping[str, Mapping], head: Mapping[str, Mapping]) -> CapacityDiff:
    """Compare the environments both sides have node groups for. Never raises: an error becomes ``error``."""
    try:
        prices = load_prices()
        base_names, head_names = set(_environments(base)), set(_environments(head))
        base_stacks = stacks_by_environment(base, sorted(base_names))
        head_stacks = stacks_by_environment(head, sorted(head_names))
        changes = []
        for name in sorted(base_names | head_names):
            old = report_from_stacks(name, base_stacks[name], prices) if name in base_names else None
            new = report_from_stacks(name, head_stacks[name], prices) if name in head_names else None
            if (old is None and name in base_names) or (new is None and name in head_names):
                continue  # a side that has the environment but no readable node groups
            changes.append(CapacityChange(name, old, new, _metrics(old, new)))
        return CapacityDiff(prices.as_of.isoformat(), prices.region, tuple(changes))
    except Exception as error:  # the diff reports: a capacity problem must not stop it
        return CapacityDiff("", "", (), f"{type(error).__name__}: {error}")


# --- rendering -------------------------------------------------------------------------------------------------------

def _caption(diff: CapacityDiff) -> str:
    return (f"Both sides priced with the working tree's table ({diff.region} on-demand list prices as of "
            f"{diff.prices_as_of}, to re-check; ~ marks an estimate).")


def markdown_lines(diff: CapacityDiff | None) -> list[str]:
    if diff is None or (not diff.changes and not diff.error):
        return []
    if diff.error:
        return [f"GPU capacity and on-demand cost: not computed ({diff.error}).", ""]
    if not diff.changed:
        return [f"GPU capacity and on-demand cost: unchanged ({', '.join(c.environment for c in diff.changes)}).",
                ""]
    lines = ["#### GPU capacity and on-demand cost", "", _caption(diff), ""]
    for change in diff.changed:
        lines += [f"**{change.label}**", "", "| | base | head | change |", "|---|---:|---:|---:|"]
        lines += [f"| {m.name} | {m.shown(m.base)} | {m.shown(m.head)} | {m.shown_delta} |"
                  for m in change.changed_metrics]
        lines.append("")
    unchanged = [c.environment for c in diff.changes if not c.changed]
    if unchanged:
        lines += [f"Capacity and cost unchanged: {', '.join(unchanged)}", ""]
    return lines


def text_lines(diff: CapacityDiff | None) -> list[str]:
    if diff is None or (not diff.changes and not diff.error):
        return []
    if diff.error:
        return ["", f"GPU capacity and on-demand cost: not computed ({diff.error})"]
    if not diff.changed:
        return ["", f"GPU capacity and on-demand cost: unchanged ({', '.join(c.environment for c in diff.changes)})"]
    lines = ["", "GPU capacity and on-demand cost. " + _caption(diff)]
    for change in diff.changed:
        lines.append(f"  {change.label}:")
        lines += [f"    {m.name}: {m.shown(m.base)} -> {m.shown(m.head)} ({m.shown_delta})"
                  for m in change.changed_metrics]
    return lines


def _value(metric: Metric, value: int | Decimal | None) -> int | float | None:
    if value is None:
        return None
    return round_usd(Decimal(value)) if metric.money else int(value)


def to_json(diff: CapacityDiff | None) -> dict[str, Any] | None:
    if diff is None:
        return None
    return {
        "prices_as_of": diff.prices_as_of, "region": diff.region, "error": diff.error,
        "environments": {c.environment: {
            "changed": c.changed, "status": c.status,
            "metrics": {m.name: {"base": _value(m, m.base), "head": _value(m, m.head), "delta": _value(m, m.delta),
                                 "estimate": m.estimate} for m in c.metrics},
        } for c in diff.changes},
    }
