"""The capacity and cost report (platform_config/report.py, tools/report, the capacity part of tools/synth_diff).

Capacity is checked against numbers worked out by hand from environments/*.yaml and the catalogue (GPUs per
instance type); the cost arithmetic against a fixture price table with round numbers
(tests/fixtures/report/prices.yaml) and a small fixture environment (tests/fixtures/report/environments/small.yaml).
"""

from __future__ import annotations

import copy
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from platform_config.catalogue import load_catalogue
from platform_config.data_layer import platform_secrets
from platform_config.loader import load_environment
from platform_config.models import Environment
from platform_config.report import (
    Database,
    InfrastructureFacts,
    LoadBalancer,
    PoolCapacity,
    environment_report,
    facts_from_stacks,
    format_money,
    load_prices,
    pools_from_cluster_stack,
    pools_from_environment,
    report_for,
    stacks_by_environment,
)
from tests_support import ENVIRONMENT_NAMES
from tools.report.__main__ import main as report_main
from tools.report.outdir import missing_environments
from tools.report.render import brief_lines, brief_report, build_reports, render
from tools.synth_diff.capacity import capacity_diff
from tools.synth_diff.capacity import text_lines as capacity_text_lines
from tools.synth_diff.diff import diff_synth_folders, load_stacks
from tools.synth_diff.render import render as render_diff
from tools.synth_diff.render import to_json as diff_json

FIXTURES = Path(__file__).parent / "fixtures"
TEST_PRICES = load_prices(FIXTURES / "report" / "prices.yaml")
SMALL = load_environment(FIXTURES / "report" / "environments" / "small.yaml")
DIFF_BASE, DIFF_HEAD = FIXTURES / "synth_diff" / "base", FIXTURES / "synth_diff" / "head"


@pytest.fixture(scope="module")
def reports(environments, stacks):
    """The report of every environment with the real price table, by name."""
    return {r.name: r for r in build_reports(list(environments.values()), stacks)}


# --- capacity: every environment's follows from its file and the catalogue; the arithmetic worked out by hand ------

SCALES = ("min", "desired", "max")


def per_node(pool) -> tuple[int, dict[str, int]]:
    """(physical GPUs, schedulable units) of one node of a pool, from the catalogue and the file's sharing."""
    gpus = load_catalogue().instance_types[pool.instance_types[0]].gpus
    if pool.gpu is None:
        return gpus, {}
    if pool.gpu.sharing.layout:
        return gpus, {f"nvidia.com/mig-{profile}": gpus * count for profile, count in pool.gpu.sharing.layout.items()}
    return gpus, {"nvidia.com/gpu": gpus * (pool.gpu.sharing.replicas or 1)}  # whole GPUs: one unit each


@pytest.mark.parametrize("name", ENVIRONMENT_NAMES)
def test_the_gpu_capacity_of_each_environment_is_its_pools_nodes_times_what_one_node_offers(name, reports,
                                                                                           environments):
    report, env = reports[name], environments[name]
    for scale in SCALES:
        physical, units = 0, {}
        for pool_name, pool in env.node_pools.items():
            nodes = getattr(pool, f"{scale}_size")
            gpus, offered = per_node(pool)
            [capacity] = [p.capacity for p in report.pools if p.capacity.name == pool_name]
            assert capacity.schedulable(scale) == {r: n * nodes for r, n in sorted(offered.items())}, pool_name
            physical += gpus * nodes
            for resource, count in offered.items():
                units[resource] = units.get(resource, 0) + count * nodes
        assert report.physical_gpus(scale) == physical, scale
        assert report.schedulable(scale) == dict(sorted(units.items())), scale


def test_a_mig_pool_worked_out_by_hand_offers_its_layout_on_every_gpu_of_every_node():
    data = yaml.safe_load((FIXTURES / "report" / "environments" / "small.yaml").read_text())
    data["node_pools"]["mig"] = {"instance_types": ["p4de.24xlarge"], "min_size": 2, "desired_size": 2,
                                 "max_size": 3, "gpu": {"model": "A100-80GB", "sharing": {
                                     "mode": "mig", "layout": {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}}}}
    [mig] = [p for p in pools_from_environment(Environment.model_validate(data)) if p.name == "mig"]
    # 2 nodes x 8 GPUs x one 3g.40gb per GPU = 16; x two 1g.10gb = 32; at max 3 nodes: 24, 24, 48; 24 GPUs
    assert mig.schedulable("min") == {"nvidia.com/mig-1g.10gb": 32, "nvidia.com/mig-2g.20gb": 16,
                                      "nvidia.com/mig-3g.40gb": 16}
    assert mig.schedulable("max") == {"nvidia.com/mig-1g.10gb": 48, "nvidia.com/mig-2g.20gb": 24,
                                      "nvidia.com/mig-3g.40gb": 24}
    assert (mig.physical_gpus("min"), mig.physical_gpus("max")) == (16, 24)
    assert mig.sharing == "MIG 3g.40gb + 2g.20gb + 2x 1g.10gb"


@pytest.mark.parametrize("name", ENVIRONMENT_NAMES)
def test_pools_read_back_from_the_synthesized_autoscaler_tags_agree_with_the_environment_file(name, environments,
                                                                                            stacks):
    def shape(pool):
        return (pool.instance_types, pool.min_size, pool.desired_size, pool.max_size, pool.gpu_model,
                pool.gpus_per_node, pool.sharing_mode, dict(pool.resources_per_node), pool.root_volume_gib,
                pool.sharing)
    from_file = {p.name: shape(p) for p in pools_from_environment(environments[name])}
    from_stack = {p.name: shape(p) for p in pools_from_cluster_stack(stacks[f"{name}-cluster"])}
    assert from_stack == from_file


def test_the_fixed_items_are_counted_from_the_synthesized_stacks(environments, stacks):
    grouped = stacks_by_environment(stacks, list(environments))
    dev, prod = facts_from_stacks(grouped["dev"].values()), facts_from_stacks(grouped["prod"].values())
    assert (dev.nat_gateways, prod.nat_gateways) == (1, 3)  # single vs one_per_az over 3 AZs
    assert (dev.public_ipv4_addresses, prod.public_ipv4_addresses) == (1, 3)
    # six interface endpoints, one ENI in each private subnet: 6 x 2 AZs in dev, 6 x 3 in prod
    assert (sum(n for _, n in dev.interface_endpoints), sum(n for _, n in prod.interface_endpoints)) == (12, 18)
    assert dev.gateway_endpoints == ("s3",)
    assert [(d.instance_class, d.multi_az, d.allocated_gib) for d in prod.databases] == [("db.r6g.xlarge", True, 100)]
    assert [(lb.kind, lb.source, lb.scheme) for lb in prod.load_balancers] == [
        ("alb", "inference/inference", "internal"), ("nlb", "inference/triton-grpc", "internal")]
    # The secrets catalogue, and the delivery layer's GitHub App secret (prod has no self-managed W&B server).
    assert (prod.eks_clusters, prod.efs_file_systems, prod.secrets) == (1, 1, len(platform_secrets()) + 1)


# --- cost arithmetic on the fixture price table ---------------------------------------------------------------------

SMALL_FACTS = InfrastructureFacts(
    eks_clusters=1, nat_gateways=1, public_ipv4_addresses=1,
    interface_endpoints=(("ecr.api", 2), ("sts", 2)), gateway_endpoints=("s3",),
    databases=(Database("mlops-small-mlflow", "postgres", "db.t4g.medium", True, 20, "gp3"),),
    efs_file_systems=1, load_balancers=(LoadBalancer("alb", "inference/inference", "internal"),
                                        LoadBalancer("nlb", "inference/triton-grpc", "internal")),
    kms_keys=2, secrets=3)


@pytest.fixture(scope="module")
def small():
    return environment_report("small", "us-east-1", pools_from_environment(SMALL), SMALL_FACTS, TEST_PRICES)


def test_each_pool_costs_its_nodes_times_the_hourly_price_of_its_instance_type(small):
    cpu, a100 = small.pools
    # cpu: m5.xlarge at 0.20/h; 1 / 2 / 3 nodes x 0.20 x 730 h
    assert {s: cpu.by_scale[s].per_month for s in ("min", "desired", "max")} == {
        "min": Decimal("146.00"), "desired": Decimal("292.00"), "max": Decimal("438.00")}
    # a100: p4d.24xlarge at 20.00/h; 0 / 1 / 2 nodes x 20 x 730 h
    assert {s: a100.by_scale[s].per_month for s in ("min", "desired", "max")} == {
        "min": Decimal(0), "desired": Decimal("14600.00"), "max": Decimal("29200.00")}
    assert a100.by_scale["max"].per_hour == Decimal("40.00")
    # its capacity: 8 A100-40GB per node x 2 replicas = 16 nvidia.com/gpu per node, 32 at max
    assert a100.capacity.schedulable("max") == {"nvidia.com/gpu": 32}


def test_root_volumes_cost_the_pools_disk_sizes_times_their_nodes_at_the_gp3_price(small):
    # min: 1 x 100 GiB = 100; desired: 2 x 100 + 1 x 200 = 400; max: 3 x 100 + 2 x 200 = 700 (x 0.073 per GB-month)
    assert {s: small.root_volumes[s].per_month for s in ("min", "desired", "max")} == {
        "min": Decimal("7.300"), "desired": Decimal("29.200"), "max": Decimal("51.100")}
    assert small.root_volumes["min"].per_hour == Decimal("0.01")


def test_fixed_items_cost_the_same_at_every_scale_and_efs_storage_stays_out_of_the_totals(small):
    monthly = {line.item: line.cost.per_month for line in small.fixed if line.in_totals}
    assert monthly == {
        "EKS control plane": Decimal("73.00"),           # 1 x 0.10 x 730
        "NAT gateways": Decimal("36.50"),                # 1 x 0.05 x 730
        "Public IPv4 addresses": Decimal("7.30"),        # 1 x 0.01 x 730
        "Interface VPC endpoints": Decimal("29.20"),     # (2 + 2) endpoint-AZs x 0.01 x 730
        "RDS postgres db.t4g.medium": Decimal("146.00"),  # Multi-AZ: 2 x 0.10 x 730
        "RDS storage (gp3)": Decimal("4.00"),            # 20 GiB x 2 (Multi-AZ) x 0.10
        "Application Load Balancers": Decimal("14.60"),  # 1 x 0.02 x 730
        "Network Load Balancers": Decimal("21.90"),      # 1 x 0.03 x 730
        "KMS customer managed keys": Decimal("2.00"),    # 2 x 1.00
        "Secrets Manager secrets": Decimal("1.50"),      # 3 x 0.50
    }
    assert small.fixed_total.per_month == Decimal("336.00")
    [efs] = [line for line in small.fixed if not line.in_totals]
    assert (efs.item, efs.cost.per_month) == ("EFS file systems", Decimal(0))


def test_the_totals_add_pools_root_volumes_and_fixed_items_at_min_desired_and_max(small):
    # min: 146.00 + 0 + 7.30 + 336.00; desired: 292.00 + 14,600.00 + 29.20 + 336.00; max: 438 + 29,200 + 51.10 + 336
    assert {s: small.total(s).per_month for s in ("min", "desired", "max")} == {
        "min": Decimal("489.30"), "desired": Decimal("15257.20"), "max": Decimal("30025.10")}
    assert small.total("max").per_hour * 730 == pytest.approx(small.total("max").per_month, abs=Decimal("1e-9"))
    assert not small.total("max").estimate
    assert format_money(small.total("desired")) == "15,257.20"


def test_an_unverified_price_makes_every_amount_using_it_an_estimate():
    cpu = next(p for p in pools_from_environment(SMALL) if p.name == "cpu")
    h100 = PoolCapacity(name="h100", instance_types=("p5.48xlarge",), min_size=0, desired_size=0, max_size=1,
                        gpu_model="H100-80GB", gpus_per_node=8)  # p5.48xlarge is unverified in the fixture table
    report = environment_report("small", "us-east-1", [cpu, h100], InfrastructureFacts(), TEST_PRICES)
    assert not report.total("desired").estimate   # no h100 node at desired: the unverified price is not used
    assert report.total("max").estimate
    # max: cpu 3 x 0.20 x 730 = 438.00; h100 1 x 50.00 x 730 = 36,500.00; cpu root volumes 3 x 100 x 0.073 = 21.90
    assert format_money(report.total("max")) == "~36,959.90"


def test_an_item_without_a_price_is_named_and_left_out_rather_than_guessed():
    facts = InfrastructureFacts(databases=(Database("db", "postgres", "db.x9.huge", False, 0, "gp3"),))
    report = environment_report("small", "us-east-1", [], facts, TEST_PRICES)
    assert report.total("max").missing == frozenset({"db.x9.huge"})
    assert format_money(report.total("max")).endswith("+?")


def test_prices_of_another_region_make_the_whole_report_an_estimate():
    report = environment_report("small", "eu-west-1", pools_from_environment(SMALL), SMALL_FACTS, TEST_PRICES)
    assert report.priced_in_another_region
    assert all(report.total(s).estimate for s in ("min", "desired", "max"))


def test_the_text_markdown_and_brief_reports_name_the_environments_priced_at_another_regions_prices(small):
    elsewhere = environment_report("far", "eu-west-1", pools_from_environment(SMALL), SMALL_FACTS, TEST_PRICES)
    line = f"Priced at {TEST_PRICES.region} prices, not their own region's: far (eu-west-1)"
    for fmt in ("text", "markdown"):
        assert line in render([small, elsewhere], fmt)
        assert "not their own region's" not in render([small], fmt)
    assert any(line in brief for brief in brief_lines([small, elsewhere]))


# --- the price table ----------------------------------------------------------------------------------------------

def test_the_price_table_is_dated_for_one_region_and_names_its_sources():
    prices = load_prices()
    assert prices.region == "us-east-1" and prices.hours_per_month == 730
    assert all(url.startswith("https://aws.amazon.com/") for url in prices.sources.values())


def test_every_instance_type_of_the_catalogue_and_every_database_class_in_use_has_a_price(environments):
    prices = load_prices()
    assert set(load_catalogue().instance_types) <= set(prices.instances)
    assert {e.data.database.instance_class for e in environments.values()} <= set(prices.databases)


def test_the_eks_control_plane_is_priced_at_standard_support():
    assert load_prices().services["eks_cluster"].price == Decimal("0.10")


def test_the_report_states_the_price_date_and_marks_estimates(reports, environments):
    text = render(list(reports.values()), "text", environments)
    assert f"as of {load_prices().as_of.isoformat()}" in text
    assert "List prices to re-check" in text
    # prod's database class has an unverified price: its line and prod's totals are estimates
    assert "~657.00" in text  # db.r6g.xlarge, Multi-AZ: 2 x 0.45 x 730


# --- the command line, the JSON form and the brief version ---------------------------------------------------------

def test_the_json_report_carries_capacity_cost_and_the_price_date_for_the_pull_request(synth_outdir, tmp_path,
                                                                                       capsys, reports):
    written = tmp_path / "platform-report.json"
    assert report_main(["report", "--outdir", str(synth_outdir), "--format", "json",
                        "--json-output", str(written)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(written.read_text())
    assert printed["prices"]["as_of"] == load_prices().as_of.isoformat()
    assert "instances.p5e.48xlarge" in printed["prices"]["unverified"]
    assert set(printed["environments"]) == set(reports)
    for name, report in reports.items():
        document = printed["environments"][name]
        assert document["summary"]["physical_gpus"] == {scale: report.physical_gpus(scale) for scale in SCALES}
        for pool in report.pools:
            [written_pool] = [p for p in document["pools"] if p["name"] == pool.capacity.name]
            assert written_pool["schedulable"]["max"] == pool.capacity.schedulable("max"), (name, pool.capacity.name)
        assert set(document["totals"]) == set(SCALES)


def test_the_markdown_report_has_a_capacity_and_a_cost_table_per_environment(reports, environments):
    markdown = render(list(reports.values()), "markdown", environments)
    for name in environments:
        assert f"#### {name} (" in markdown
    assert markdown.count("**GPU capacity**") == markdown.count("**On-demand cost (USD)**") == len(environments)


def test_the_brief_report_gives_one_line_per_environment_after_a_synth(environments, synth_outdir, reports):
    lines = brief_report(list(environments.values()), synth_outdir).splitlines()
    assert load_prices().as_of.isoformat() in lines[0]
    elsewhere = any(report.priced_in_another_region for report in reports.values())
    assert len(lines) == 1 + int(elsewhere) + len(environments)
    for name, report in reports.items():
        [line] = [line for line in lines if line.strip().startswith(f"{name} ")]
        assert "GPUs {} / {} / {};".format(*(report.physical_gpus(scale) for scale in SCALES)) in line


def test_the_brief_report_never_fails_the_synth_it_follows(environments, tmp_path):
    assert brief_report(list(environments.values()), tmp_path / "nothing").startswith(
        "(capacity and cost report unavailable")


def test_a_synthesized_folder_without_every_environment_is_not_read_as_if_it_had_them(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"stacks": {"dev-network": {}, "dev-cluster": {}}}))
    assert missing_environments(tmp_path, ["dev", "prod"]) == ["prod"]
    assert missing_environments(tmp_path / "absent", ["dev"]) == ["dev"]


def test_the_report_of_an_environment_uses_its_own_stacks_only(environments, stacks):
    grouped = stacks_by_environment(stacks, list(environments))
    assert set(grouped["prod"]) == {f"prod-{layer}" for layer in
                                    ("cluster", "data", "delivery", "network", "platform", "workloads")}
    report = report_for(environments["dev"], grouped["dev"].values())
    assert report.facts.nat_gateways == 1


# --- make diff: the change in capacity and cost ------------------------------------------------------------------

def test_the_diff_fixture_pair_raises_the_mig_pool_by_four_nodes_and_reports_the_gpus_and_cost_it_adds():
    diff = diff_synth_folders(DIFF_BASE, DIFF_HEAD)
    [change] = diff.capacity.changes
    metrics = {m.name: m for m in change.changed_metrics}
    # a100-mig max_size 2 -> 6: 4 more p4de.24xlarge nodes of 8 GPUs at max
    assert (metrics["physical GPUs at max"].base, metrics["physical GPUs at max"].head) == (16, 48)
    price = load_prices().instances["p4de.24xlarge"].price
    assert metrics["USD per month at max"].delta == 4 * price * 730
    assert set(metrics) == {"physical GPUs at max", "USD per month at max"}  # min and desired do not change


def test_the_diff_shows_the_capacity_change_in_markdown_text_and_json():
    diff = diff_synth_folders(DIFF_BASE, DIFF_HEAD)
    markdown = render_diff(diff, "markdown")
    assert "#### GPU capacity and on-demand cost" in markdown
    assert "| physical GPUs at max | 16 | 48 | +32 |" in markdown
    assert "    physical GPUs at max: 16 -> 48 (+32)" in render_diff(diff, "text")
    document = diff_json(diff)["capacity"]
    assert document["environments"]["dev"]["metrics"]["physical GPUs at max"] == {
        "base": 16, "head": 48, "delta": 32, "estimate": False}


def test_more_time_slicing_replicas_show_as_more_schedulable_units_at_the_same_cost(synth_outdir, tmp_path,
                                                                                   environments):
    [(env, pool_name, pool)] = [(env, name, pool) for env in environments.values()
                                for name, pool in env.gpu_pools().items()
                                if pool.gpu.sharing.replicas and pool.max_size > 0][:1]
    head = tmp_path / "head"
    shutil.copytree(synth_outdir, head)
    cluster = head / "stacks" / f"{env.name}-cluster" / "cdk.tf.json"
    document = json.loads(cluster.read_text())
    tags = document["resource"]["aws_autoscaling_group_tag"].values()
    [group] = {t["autoscaling_group_name"] for t in tags
               if t["tag"]["key"].endswith("/label/mlops-platform/pool") and t["tag"]["value"] == pool_name}
    gpus, offered = per_node(pool)
    for tag in tags:
        if tag["autoscaling_group_name"] == group and tag["tag"]["key"].endswith("/resources/nvidia.com/gpu"):
            assert tag["tag"]["value"] == str(offered["nvidia.com/gpu"])
            tag["tag"]["value"] = str(gpus * (pool.gpu.sharing.replicas + 2))  # two more replicas per GPU
    cluster.write_text(json.dumps(document))
    diff = capacity_diff(load_stacks(synth_outdir), load_stacks(head))
    [change] = diff.changed
    assert change.environment == env.name
    [(metric, base, after)] = [(m.name, m.base, m.head) for m in change.changed_metrics]
    assert metric == "nvidia.com/gpu at max"
    assert after - base == pool.max_size * gpus * 2


def test_a_new_environment_shows_its_gpus_and_cost_against_nothing_and_a_removed_one_against_its_base(
        stacks, reports):
    name = sorted(reports)[0]
    without = {stack: body for stack, body in stacks.items() if stack_environment(stack, reports) != name}
    report = reports[name]
    for base, head, status in ((without, stacks, "added"), (stacks, without, "removed")):
        diff = capacity_diff(base, head)
        [change] = diff.changed
        assert (change.environment, change.status) == (name, status)
        metrics = {m.name: m for m in change.metrics}
        for scale in SCALES:
            present = report.total(scale).per_month
            assert (metrics[f"USD per month at {scale}"].base, metrics[f"USD per month at {scale}"].head) == (
                (0, present) if status == "added" else (present, 0))
        gpus = metrics["physical GPUs at max"]
        assert {gpus.base, gpus.head} == {0, report.physical_gpus("max")}
    text = "\n".join(capacity_text_lines(capacity_diff(without, stacks)))
    assert f"  {name} (new environment):" in text
    assert "    USD per month at max: 0.00 -> " in text


def stack_environment(stack: str, reports) -> str | None:
    """The environment of a ``<env>-<layer>`` stack; None for the repository's github stack."""
    return max((n for n in reports if stack.startswith(f"{n}-")), key=len, default=None)


def test_an_unchanged_platform_reports_its_capacity_and_cost_as_unchanged(synth_outdir, environments):
    diff = diff_synth_folders(synth_outdir, synth_outdir)
    assert diff.capacity.changed == []
    assert f"GPU capacity and on-demand cost: unchanged ({', '.join(sorted(environments))})" in \
        render_diff(diff, "markdown")


def test_stacks_without_node_groups_add_no_capacity_section():
    stack = {"resource": {"aws_s3_bucket": {"b": {"bucket": "x"}}}}
    diff = capacity_diff({"dev-data": stack}, {"dev-data": copy.deepcopy(stack)})
    assert diff.changes == () and diff.error is None
