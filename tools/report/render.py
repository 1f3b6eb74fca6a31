"""The capacity and cost report for people (plain text for terminals, Markdown for pull requests) and for programs
(JSON), and the brief version a synth can print. Every number comes from ``platform_config.report``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from platform_config.models import Environment
from platform_config.report import (
    SCALES,
    EnvironmentReport,
    Money,
    PriceTable,
    format_money,
    format_resources,
    format_usd,
    load_prices,
    money_json,
    report_for,
    stacks_by_environment,
    summary,
)

FORMATS = ("text", "markdown", "json")

#: What the totals leave out: usage-priced items a synthesized stack cannot know.
NOT_INCLUDED = (
    "data transfer and the per-GB processing of NAT gateways, VPC endpoints and load balancers",
    "load balancer capacity units (LCU/NLCU)",
    "S3 storage and requests, EFS storage, EBS volumes of persistent volume claims, snapshots and backups",
    "CloudWatch Logs, metrics and Container Insights, X-Ray",
    "ECR storage, KMS and Secrets Manager API requests",
    "discounts: Savings Plans, Reserved Instances, Spot, Capacity Blocks, EDP",
)


def build_reports(environments: Sequence[Environment], stacks: Mapping[str, Mapping],
                  prices: PriceTable | None = None) -> list[EnvironmentReport]:
    """One report per environment: pools from its file, fixed items from its synthesized stacks."""
    grouped = stacks_by_environment(stacks, [e.name for e in environments])
    return [report_for(environment, grouped[environment.name].values(), prices) for environment in environments]


# --- tables ----------------------------------------------------------------------------------------------------------

def _text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()
    return [line(headers), line(["-" * w for w in widths]), *[line(row) for row in rows]]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    rule = ["---:" if i in right else "---" for i in range(len(headers))]
    return [f"| {' | '.join(_cell(h) for h in headers)} |", f"|{'|'.join(rule)}|",
            *[f"| {' | '.join(_cell(c) for c in row)} |" for row in rows]]


def _nodes(capacity) -> str:
    return f"{capacity.min_size} / {capacity.desired_size} / {capacity.max_size}"


def capacity_rows(report: EnvironmentReport) -> list[list[str]]:
    rows = []
    for pool in report.pools:
        c = pool.capacity
        gpus = "-" if not c.is_gpu else ("?" if c.gpus_per_node is None else f"{c.gpus_per_node}x {c.gpu_model}")
        physical = "-" if not c.is_gpu else str(c.physical_gpus("max") if c.gpus_per_node is not None else "?")
        rows.append([c.name, ", ".join(c.instance_types), gpus, c.sharing, _nodes(c), physical,
                     format_resources(c.resources_per_node), format_resources(c.schedulable("max"))])
    gpus_at_max = report.physical_gpus("max")
    rows.append(["total", "", "", "", "", "?" if gpus_at_max is None else str(gpus_at_max), "",
                 format_resources(report.schedulable("max"))])
    return rows


CAPACITY_HEADERS = ("pool", "instance types", "GPUs per node", "sharing", "nodes min / desired / max",
                    "GPUs at max", "schedulable per node", "schedulable at max")
COST_HEADERS = ("item", "$/h min", "$/h desired", "$/h max", "$/month min", "$/month desired", "$/month max")


def _scaled_row(label: str, by_scale: Mapping[str, Money]) -> list[str]:
    return [label, *[format_money(by_scale[s], hourly=True) for s in SCALES],
            *[format_money(by_scale[s]) for s in SCALES]]


def cost_rows(report: EnvironmentReport) -> list[list[str]]:
    rows = []
    for pool in report.pools:
        c = pool.capacity
        rows.append(_scaled_row(f"pool {c.name} ({c.instance_type})", pool.by_scale))
    rows.append(_scaled_row("node root volumes (gp3)", report.root_volumes))
    for line in report.fixed:
        if line.in_totals:
            rows.append(_scaled_row(line.item, {s: line.cost for s in SCALES}))
    rows.append(_scaled_row("total", {s: report.total(s) for s in SCALES}))
    return rows


FIXED_HEADERS = ("item", "quantity", "unit price (USD)", "note")
DEPLOYMENT_HEADERS = ("model deployment", "engine", "model", "pool", "GPU per replica", "replicas (max)",
                      "GPU units at max")


def deployment_rows(environment: Environment) -> list[list[str]]:
    """Every model server that runs, each counted on its own: several may share an engine and a pool."""
    inference = environment.workloads.inference
    servers = [(name, d.engine, d) for name, d in inference.deployments.items() if d.enabled]
    if inference.batch and inference.batch.enabled:
        servers.append(("batch-vllm", "vllm", inference.batch))
    return [[name, engine, server.model.path, server.placement.pool,
             f"{server.placement.gpu.resource} x{server.placement.gpu.count}",
             f"{server.scaling.replicas} ({server.scaling.most})",
             str(server.scaling.most * server.placement.gpu.count)] for name, engine, server in servers]


def _exact(amount) -> str:
    """A list price as written, with at least two decimals: ``0.10``, ``27.44705``, ``1.00``."""
    whole, _, decimals = f"{amount.normalize():f}".partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def _unit_price(line) -> str:
    if line.price is None:
        return "no price"
    per = {"hour": "hour", "month": "month", "gb-month": "GB-month"}[line.price.unit]
    return ("~" if line.price.unverified else "") + f"{_exact(line.price.price)} per {per}"


def fixed_rows(report: EnvironmentReport) -> list[list[str]]:
    rows = []
    for pool in report.pools:
        c = pool.capacity
        price = "no price" if pool.price is None else \
            ("~" if pool.price.unverified else "") + f"{_exact(pool.price.price)} per hour"
        rows.append([f"pool {c.name}", f"{c.min_size} / {c.desired_size} / {c.max_size} x {c.instance_type}",
                     price, pool.note or (f"also {', '.join(c.instance_types[1:])} (priced as the first)"
                                          if len(c.instance_types) > 1 else "")])
    gib = {s: sum((p.capacity.root_volume_gib or 0) * p.capacity.nodes(s) for p in report.pools) for s in SCALES}
    ebs = report.prices.services["ebs_gp3_storage"]
    rows.append(["node root volumes (gp3)", f"{gib['min']} / {gib['desired']} / {gib['max']} GiB",
                 f"{_exact(ebs.price)} per GB-month", "disk_size_gib of each pool x its nodes"])
    for line in report.fixed:
        plural = "" if line.quantity == 1 or line.unit == "GB" else "s"
        quantity = f"{line.quantity.normalize():f} {line.unit}{plural}"
        rows.append([line.item, quantity, _unit_price(line), line.note])
    return rows


# --- the whole report ----------------------------------------------------------------------------------------------

def _title(report: EnvironmentReport, environment: Environment | None) -> str:
    tier = f", tier {environment.tier.value}" if environment else ""
    return f"{report.name} ({report.region}{tier})"


def priced_elsewhere(reports: Sequence[EnvironmentReport]) -> str | None:
    """One line naming the environments whose region the price table does not cover, or None when it covers all:
    their amounts use the table's region's prices, so every one of them is an estimate."""
    if not reports:
        return None
    prices = reports[0].prices
    others = [f"{r.name} ({r.region})" for r in reports if r.region != prices.region]
    if not others:
        return None
    return (f"Priced at {prices.region} prices, not their own region's: {', '.join(others)}; "
            "all their amounts are estimates (~).")


def _price_lines(prices: PriceTable, reports: Sequence[EnvironmentReport] = ()) -> list[str]:
    unverified = ", ".join(name.split(".", 1)[1] for name in prices.unverified) or "none"
    elsewhere = priced_elsewhere(reports)
    return [*([elsewhere] if elsewhere else []),
        f"Prices: {prices.basis}, {prices.region}, {prices.currency}, as of {prices.as_of.isoformat()} "
        f"(platform_config/data/prices.yaml; sources: the AWS pricing pages it names). List prices to re-check "
        "before any decision.",
        f"A month is {prices.hours_per_month} hours. ~ marks an estimate: it uses a price no public copy confirmed "
        f"({unverified}). +? marks an amount that leaves out an item without a price.",
        "Pools are priced at their first instance type; nodes min / desired / max are the node group's scaling "
        "configuration (desired is the initial size: the Cluster Autoscaler moves it).",
    ]


def render_text(reports: Sequence[EnvironmentReport], environments: Mapping[str, Environment] | None = None) -> str:
    environments = environments or {}
    prices = reports[0].prices if reports else load_prices()
    lines = ["Platform capacity and on-demand cost", "", *_price_lines(prices, reports)]
    for report in reports:
        lines += ["", "=" * 100, _title(report, environments.get(report.name)), "", "GPU capacity"]
        lines += [f"  {row}" for row in _text_table(CAPACITY_HEADERS, capacity_rows(report), right=(5,))]
        lines += ["", "On-demand cost (USD)"]
        lines += [f"  {row}" for row in _text_table(COST_HEADERS, cost_rows(report), right=range(1, 7))]
        if report.name in environments:
            lines += ["", "Model deployments"]
            lines += [f"  {row}" for row in _text_table(DEPLOYMENT_HEADERS, deployment_rows(
                environments[report.name]), right=(6,))]
        lines += ["", "What is priced"]
        lines += [f"  {row}" for row in _text_table(FIXED_HEADERS, fixed_rows(report))]
    lines += ["", "Not included: " + "; ".join(NOT_INCLUDED) + "."]
    return "\n".join(lines) + "\n"


def render_markdown(reports: Sequence[EnvironmentReport],
                    environments: Mapping[str, Environment] | None = None) -> str:
    environments = environments or {}
    prices = reports[0].prices if reports else load_prices()
    lines = ["### Platform capacity and on-demand cost", "",
             *[f"{line}  " for line in _price_lines(prices, reports)], ""]
    for report in reports:
        lines += [f"#### {_title(report, environments.get(report.name))}", "", "**GPU capacity**", ""]
        lines += _markdown_table(CAPACITY_HEADERS, capacity_rows(report), right=(5,))
        lines += ["", "**On-demand cost (USD)**", ""]
        lines += _markdown_table(COST_HEADERS, cost_rows(report), right=range(1, 7))
        if report.name in environments:
            lines += ["", "**Model deployments**", ""]
            lines += _markdown_table(DEPLOYMENT_HEADERS, deployment_rows(environments[report.name]), right=(6,))
        lines += ["", "<details><summary>What is priced</summary>", ""]
        lines += _markdown_table(FIXED_HEADERS, fixed_rows(report))
        lines += ["", "</details>", ""]
    lines += ["Not included: " + "; ".join(NOT_INCLUDED) + "."]
    return "\n".join(lines) + "\n"


def report_json(reports: Sequence[EnvironmentReport]) -> dict[str, Any]:
    prices = reports[0].prices if reports else load_prices()
    document: dict[str, Any] = {
        "prices": {"as_of": prices.as_of.isoformat(), "region": prices.region, "currency": prices.currency,
                   "basis": prices.basis, "hours_per_month": prices.hours_per_month,
                   "notice": "list prices to re-check before any decision", "sources": dict(prices.sources),
                   "unverified": prices.unverified},
        "environments": {},
        "not_included": list(NOT_INCLUDED),
    }
    for report in reports:
        pools = []
        for pool in report.pools:
            c = pool.capacity
            pools.append({
                "name": c.name, "instance_types": list(c.instance_types), "priced_as": c.instance_type,
                "capacity_type": c.capacity_type, "purpose": list(c.purpose),
                "gpu_model": c.gpu_model, "gpus_per_node": c.gpus_per_node if c.is_gpu else 0,
                "sharing_mode": c.sharing_mode, "sharing": c.sharing,
                "nodes": {s: c.nodes(s) for s in SCALES},
                "physical_gpus": {s: c.physical_gpus(s) if c.is_gpu else 0 for s in SCALES},
                "schedulable_per_node": dict(c.resources_per_node),
                "schedulable": {s: c.schedulable(s) for s in SCALES},
                "unit_price": None if pool.price is None else float(pool.price.price),
                "unit_price_unverified": bool(pool.price and pool.price.unverified),
                "cost": {s: money_json(pool.by_scale[s]) for s in SCALES},
                "note": pool.note,
            })
        document["environments"][report.name] = {
            "region": report.region,
            "priced_in_another_region": report.priced_in_another_region,
            "pools": pools,
            "root_volumes": {s: money_json(report.root_volumes[s]) for s in SCALES},
            "fixed": [{"item": line.item, "quantity": float(line.quantity), "unit": line.unit,
                       "unit_price": None if line.price is None else float(line.price.price),
                       "price_unit": None if line.price is None else line.price.unit,
                       "unit_price_unverified": bool(line.price and line.price.unverified),
                       "cost": money_json(line.cost), "in_totals": line.in_totals, "note": line.note}
                      for line in report.fixed],
            "fixed_total": money_json(report.fixed_total),
            "totals": {s: money_json(report.total(s)) for s in SCALES},
            "summary": summary(report),
        }
    return document


def render(reports: Sequence[EnvironmentReport], fmt: str,
           environments: Mapping[str, Environment] | None = None) -> str:
    if fmt == "text":
        return render_text(reports, environments)
    if fmt == "markdown":
        return render_markdown(reports, environments)
    if fmt == "json":
        return json.dumps(report_json(reports), indent=2) + "\n"
    raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")


# --- the brief version, for the end of a synth ---------------------------------------------------------------------

def brief_lines(reports: Sequence[EnvironmentReport]) -> list[str]:
    if not reports:
        return []
    prices = reports[0].prices
    width = max(len(r.name) for r in reports)
    lines = [f"Capacity and on-demand cost ({prices.region} list prices as of {prices.as_of.isoformat()}, to "
             "re-check; ~ estimate; `make report` for details), min / desired / max:"]
    elsewhere = priced_elsewhere(reports)
    if elsewhere:
        lines.append(f"  {elsewhere}")
    for report in reports:
        gpus = " / ".join("?" if report.physical_gpus(s) is None else str(report.physical_gpus(s)) for s in SCALES)
        cost = " / ".join(format_money(report.total(s)) for s in SCALES)
        lines.append(f"  {report.name.ljust(width)}  GPUs {gpus}; USD/month {cost}; schedulable at max: "
                     f"{format_resources(report.schedulable('max'))}")
    return lines


def brief_report(environments: Sequence[Environment], outdir: str | Path = "cdktf.out") -> str:
    """A few lines per synth: GPUs and cost per month at min / desired / max of each environment just synthesized
    into ``outdir``. Never raises: a report that cannot be made says why in one line."""
    from tools.report.outdir import load_stacks

    try:
        reports = build_reports(list(environments), load_stacks(Path(outdir)))
        return "\n".join(brief_lines(reports))
    except Exception as error:  # a report must never fail the synth it follows
        return f"(capacity and cost report unavailable: {type(error).__name__}: {error})"


__all__ = ["FORMATS", "brief_report", "build_reports", "format_usd", "render", "report_json"]
