"""Bad environment files are refused at load time, one precise message per problem (pure Python, no synth).

Each case starts from the committed prod file, breaks one thing, and checks that exactly one message names the
file, the field, the bad value and what is allowed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from platform_config.catalogue import load_catalogue
from platform_config.images import platform_images
from platform_config.loader import DEFAULT_ENV_DIR, EnvironmentFileError, load_environment, load_environments

PROD = yaml.safe_load((DEFAULT_ENV_DIR / "prod.yaml").read_text())


def problems_of(tmp_path: Path, change: Callable[[dict], None], name: str = "prod") -> list[str]:
    data = copy.deepcopy(PROD)
    change(data)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(EnvironmentFileError) as refused:
        load_environment(path)
    return refused.value.problems


def pool(data: dict, name: str) -> dict:
    return data["node_pools"][name]


def set_mig_layout(layout):
    return lambda d: pool(d, "a100-mig")["gpu"]["sharing"].update(layout=layout)


CASES = {
    "a100 pool on an h100 instance type": (
        lambda d: pool(d, "a100-timeslice").update(instance_types=["p5.48xlarge"]),
        "node_pools.a100-timeslice.gpu", ["model A100-80GB does not match p5.48xlarge", "carries H100-80GB"]),
    "mig layout over the memory slices of one gpu": (
        set_mig_layout({"3g.40gb": 2, "1g.10gb": 1}),
        "node_pools.a100-mig.gpu.sharing", ["3g.40gb x2 + 1g.10gb x1", "needs 9 of 8 memory slices"]),
    "mig profile of a 40gb gpu on an 80gb gpu": (
        set_mig_layout({"1g.5gb": 1}),
        "node_pools.a100-mig.gpu.sharing", ["1g.5gb do not exist on A100-80GB", "allowed: 1g.10gb"]),
    "mig profile count over its maximum": (
        set_mig_layout({"4g.40gb": 2}),
        "node_pools.a100-mig.gpu.sharing", ["4g.40gb x2", "holds 1 to 1 of 4g.40gb"]),
    "time-slicing replicas above 8": (
        lambda d: pool(d, "h100-timeslice")["gpu"]["sharing"].update(replicas=9),
        "node_pools.h100-timeslice.gpu.sharing.replicas", ["9 replicas", "allowed: 2 to 8"]),
    "time-slicing replicas below 2": (
        lambda d: pool(d, "h100-timeslice")["gpu"]["sharing"].update(replicas=1),
        "node_pools.h100-timeslice.gpu.sharing.replicas", ["1 replicas", "allowed: 2 to 8"]),
    "desired below min": (
        lambda d: pool(d, "cpu").update(min_size=3, desired_size=2),
        "node_pools.cpu.desired_size", ["desired_size 2 can't be less than min_size 3"]),
    "a prod-tier environment taking image tags without review": (
        lambda d: d["platform"]["gitops"].update(image_updates="direct"),
        "platform.gitops.image_updates", ["direct is not allowed in a prod-tier environment", "allowed: pull-request"]),
    "a gitops repository the image workflow cannot write to": (
        lambda d: d["platform"]["gitops"].update(repository_url="https://gitlab.example.com/ml/gitops.git"),
        "platform.gitops.repository_url", ["is not a GitHub repository", "https://github.com/<owner>/<name>.git"]),
    "max below desired": (
        lambda d: pool(d, "cpu").update(desired_size=3, max_size=2),
        "node_pools.cpu.max_size", ["max_size 2 can't be less than desired_size 3"]),
    "invalid cidr": (
        lambda d: d["network"].update(vpc_cidr="10.30.0.0/33"),
        "network.vpc_cidr", ["10.30.0.0/33"]),
    "overlapping subnets": (
        lambda d: d["network"].update(public_subnets=["10.30.192.0/22", "10.30.196.0/22", "10.30.0.0/22"]),
        "network", ["subnets 10.30.0.0/22 and 10.30.0.0/18 overlap"]),
    "subnet outside the vpc": (
        lambda d: d["network"].update(private_subnets=["10.30.0.0/18", "10.30.64.0/18", "10.99.0.0/18"]),
        "network.private_subnets", ["10.99.0.0/18 is outside vpc_cidr 10.30.0.0/16"]),
    "service cidr overlapping the vpc": (
        lambda d: d["cluster"].update(service_cidr="10.30.0.0/16"),
        "cluster.service_cidr", ["10.30.0.0/16 overlaps vpc_cidr 10.30.0.0/16"]),
    "fewer subnets than azs": (
        lambda d: d["network"].update(public_subnets=["10.30.192.0/22", "10.30.196.0/22"]),
        "network.public_subnets", ["2 subnets for 3 AZs"]),
    "high availability with one nat gateway": (
        lambda d: d["network"].update(nat_gateways="single"),
        "network.nat_gateways", ["high_availability needs one_per_az", "got single"]),
    "high availability in two azs": (
        lambda d: (d.update(availability_zones=["us-east-1a", "us-east-1b"]),
                   d["network"].update(public_subnets=d["network"]["public_subnets"][:2],
                                       private_subnets=d["network"]["private_subnets"][:2])),
        "availability_zones", ["high_availability needs at least 3 AZs, got 2"]),
    "a single az": (
        lambda d: d.update(availability_zones=["us-east-1a"]),
        "availability_zones", ["at least 2 items"]),
    "an az of another region": (
        lambda d: d.update(availability_zones=["us-east-1a", "us-east-1b", "eu-west-1c"]),
        "availability_zones", ["eu-west-1c not in region us-east-1"]),
    "unknown nat strategy": (
        lambda d: d["network"].update(nat_gateways="none"),
        "network.nat_gateways", ["'single' or 'one_per_az'", "got 'none'"]),
    "unknown key": (
        lambda d: d["cluster"].update(endpoint="public"),
        "cluster.endpoint", ["unknown key", "allowed here:", "public_access_cidrs"]),
    "unknown key in a pool": (
        lambda d: pool(d, "cpu").update(gpus=2),
        "node_pools.cpu.gpus", ["unknown key", "instance_types"]),
    "public endpoint open to the internet": (
        lambda d: d["cluster"].update(public_access_cidrs=["0.0.0.0/0"]),
        "cluster.public_access_cidrs", ["0.0.0.0/0", "explicit CIDRs"]),
    "unknown instance type": (
        lambda d: pool(d, "cpu").update(instance_types=["m5.2xlarge", "x9.huge"]),
        "node_pools.cpu.instance_types", ["x9.huge", "allowed: m5.xlarge"]),
    "gpu instance type without a gpu section": (
        lambda d: pool(d, "a100-mig").pop("gpu"),
        "node_pools.a100-mig.gpu", ["p4de.24xlarge carries 8x A100-80GB", "declare gpu"]),
    "a kubernetes version missing from the eks calendar": (
        lambda d: d["cluster"].update(kubernetes_version="1.20"),
        "cluster.kubernetes_version", ["'1.20' is not in the EKS calendar", "allowed: "]),
    "a kubernetes version past its end of eks support": (
        lambda d: d["cluster"].update(kubernetes_version="1.31"),
        "cluster.kubernetes_version", ["'1.31' reached the end of EKS support on 2026-11-26", "allowed: "]),
    "prod without prevent_destroy and without the named override": (
        lambda d: d["protection"].update(prevent_destroy=False),
        "protection.prevent_destroy", ["not allowed in a prod-tier environment", "unprotected_prod_override"]),
    "prod buckets that terraform may empty": (
        lambda d: d["protection"].update(force_destroy_buckets=True),
        "protection.force_destroy_buckets", ["never allowed in a prod-tier environment"]),
    "prod kms deletion window below the maximum": (
        lambda d: d["cluster"].update(kms_deletion_window_days=7),
        "cluster.kms_deletion_window_days", ["7 days", "keeps the maximum, 30"]),
    "an override where nothing is unprotected": (
        lambda d: d["protection"].update(unprotected_prod_override="INC-1 restore drill"),
        "protection.unprotected_prod_override", ["only for a prod-tier environment with prevent_destroy: false"]),
    "high availability with a single-az database": (
        lambda d: d["data"]["database"].update(multi_az=False),
        "data.database.multi_az", ["high_availability needs a multi-AZ database"]),
    "unknown tier": (
        lambda d: d.update(tier="production"),
        "tier", ["'dev', 'staging' or 'prod'", "got 'production'"]),
    "prod without argo cd sso": (
        lambda d: d["platform"]["gitops"].pop("sso"),
        "platform.gitops.sso", ["missing: a prod-tier environment signs in to Argo CD through SSO"]),
    "an sso issuer without tls": (
        lambda d: d["platform"]["gitops"]["sso"].update(issuer="http://login.example.com"),
        "platform.gitops.sso.issuer", []),
    "sso without admin groups": (
        lambda d: d["platform"]["gitops"]["sso"].update(admin_groups=[]),
        "platform.gitops.sso.admin_groups", []),
    "a state key of another account": (
        lambda d: d["state_backend"].update(kms_key_arn="arn:aws:kms:us-east-1:111111111111:key/abc-1"),
        "state_backend.kms_key_arn", ["a key of account 111111111111 in us-east-1",
                                      "the environment's account 333333333333"]),
    "a state key of another region": (
        lambda d: d["state_backend"].update(kms_key_arn="arn:aws:kms:eu-west-1:333333333333:key/abc-1"),
        "state_backend.kms_key_arn", ["in eu-west-1", "in the bucket's region us-east-1"]),
    "no state key": (
        lambda d: d["state_backend"].pop("kms_key_arn"),
        "state_backend.kms_key_arn", []),
    "a whole-gpu pool with time-slicing settings": (
        lambda d: pool(d, "h100-whole")["gpu"]["sharing"].update(replicas=2),
        "node_pools.h100-whole.gpu.sharing", ["mode exclusive gives pods whole, unshared GPUs",
                                              "remove 'replicas' (time-slicing)"]),
    "a whole-gpu pool with a mig layout": (
        lambda d: pool(d, "h100-whole")["gpu"]["sharing"].update(layout={"3g.40gb": 2}),
        "node_pools.h100-whole.gpu.sharing", ["mode exclusive", "remove 'layout' (MIG)"]),
    "an agent image without a build context": (
        lambda d: d["workloads"]["agents"]["runtimes"]["crewai"].update(image_repository="agents/custom"),
        "workloads.agents.runtimes.crewai.image_repository",
        ["'agents/custom' has no build context (images/agents/custom/)", "agent images built here: agents/crewai"]),
    "an agent image tag the image workflow does not push": (
        lambda d: d["workloads"]["agents"]["runtimes"]["crewai"].update(image_tag="3f2a1c9e"),
        "workloads.agents.runtimes.crewai.image_tag",
        ["'3f2a1c9e' is not the tag images.yml pushes for agents/crewai",
         f"allowed: '{platform_images()['agents/crewai'].version}'"]),
    "an inference image tag the image workflow does not push": (
        lambda d: d["workloads"]["inference"]["deployments"]["vllm"].update(image_tag="v0.34.0"),
        "workloads.inference.deployments.vllm.image_tag",
        ["'v0.34.0' is not the tag images.yml pushes for inference/vllm",
         f"allowed: '{platform_images()['inference/vllm'].version}'"]),
    "no cpu pool that keeps a node": (
        lambda d: pool(d, "cpu").update(min_size=0, desired_size=0),
        "node_pools", ["no CPU pool with min_size >= 1"]),
}


@pytest.mark.parametrize("case", CASES, ids=CASES)
def test_bad_input_is_refused_with_one_message_naming_file_field_and_reason(tmp_path, case):
    change, field, fragments = CASES[case]
    problems = problems_of(tmp_path, change)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{tmp_path / 'prod.yaml'}: {field}: ") or \
        problems[0].startswith(f"prod.yaml: {field}: "), problems[0]
    for fragment in fragments:
        assert fragment in problems[0]


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    def break_three_things(d):
        set_mig_layout({"3g.40gb": 2, "1g.10gb": 1})(d)
        pool(d, "h100-timeslice")["gpu"]["sharing"].update(replicas=9)
        d["cluster"].update(colour="blue")

    problems = problems_of(tmp_path, break_three_things)
    assert [p.split(": ")[1] for p in problems] == [
        "cluster.colour", "node_pools.a100-mig.gpu.sharing", "node_pools.h100-timeslice.gpu.sharing.replicas"]


def test_a_field_error_does_not_hide_the_cross_field_rules_of_the_same_file(tmp_path):
    """GIVEN a prod-tier file with an unquoted account id (a field error) and a KMS deletion window below 30 (a
    cross-field rule) THEN both are reported, each naming its field."""
    def break_a_field_and_a_rule(d):
        d.update(account_id=12345678901, tier="prod")
        d["cluster"].update(kms_deletion_window_days=7)

    problems = problems_of(tmp_path, break_a_field_and_a_rule)
    assert [p.split(": ")[1] for p in problems] == ["account_id", "cluster.kms_deletion_window_days"]
    assert "put the value in quotes" in problems[0]
    assert problems[1].endswith("cluster.kms_deletion_window_days: 7 days; a prod-tier environment keeps the "
                                "maximum, 30")


def test_an_unknown_key_does_not_hide_the_rules_of_its_section(tmp_path):
    def unknown_key_and_short_window(d):
        d.update(tier="prod")
        d["cluster"].update(colour="blue", kms_deletion_window_days=7)

    problems = problems_of(tmp_path, unknown_key_and_short_window)
    assert [p.split(": ")[1] for p in problems] == ["cluster.colour", "cluster.kms_deletion_window_days"]


def test_a_rule_that_reads_a_field_in_error_is_skipped_rather_than_reporting_its_consequences(tmp_path):
    """A region that is not one makes every AZ look foreign: only the region is reported."""
    problems = problems_of(tmp_path, lambda d: d.update(region="us-east1"))
    assert [p.split(": ")[1] for p in problems] == ["region"]


def test_a_field_error_inside_a_section_does_not_hide_that_sections_own_rule(tmp_path):
    """GIVEN a time-slicing pool with replicas out of range (a field error) and a MIG layout, which time-slicing
    takes none of (the sharing section's own rule) THEN both are reported."""
    name = next(name for name, spec in PROD["node_pools"].items()
                if (spec.get("gpu") or {}).get("sharing", {}).get("mode") == "time-slicing")
    too_many = load_catalogue().time_slicing_replicas.max + 1
    problems = problems_of(tmp_path, lambda d: pool(d, name)["gpu"]["sharing"].update(
        replicas=too_many, layout={"3g.40gb": 1}))
    assert [p.split(": ", 2)[1] for p in problems] == [f"node_pools.{name}.gpu.sharing.replicas",
                                                       f"node_pools.{name}.gpu.sharing"]
    assert f"{too_many} replicas per GPU; allowed: " in problems[0]
    assert problems[1].endswith("mode time-slicing needs 'replicas' and takes no 'layout'")


def test_the_name_must_match_the_file_name(tmp_path):
    problems = problems_of(tmp_path, lambda d: None, name="production")
    assert problems == [f"{tmp_path / 'production.yaml'}: name: must equal the file name 'production' (got 'prod')"]


def test_a_key_given_twice_is_refused_with_its_line(tmp_path):
    path = tmp_path / "prod.yaml"
    path.write_text("name: prod\nregion: us-east-1\nregion: us-west-2\n")
    with pytest.raises(EnvironmentFileError) as refused:
        load_environment(path)
    assert refused.value.problems == [f"{path}: line 3: not valid YAML: key 'region' is given twice"]


def test_problems_of_several_files_are_reported_together(tmp_path):
    for name in ("dev", "prod"):
        data = copy.deepcopy(PROD) | {"name": name}
        data["node_pools"]["cpu"]["max_size"] = 1
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(EnvironmentFileError) as refused:
        load_environments(tmp_path)
    assert [p.split(":")[0].rsplit("/", 1)[-1] for p in refused.value.problems] == ["dev.yaml", "prod.yaml"]


def test_platform_envs_names_a_missing_environment_clearly(tmp_path):
    (tmp_path / "prod.yaml").write_text(yaml.safe_dump(PROD))
    with pytest.raises(EnvironmentFileError) as refused:
        load_environments(tmp_path, names=["qa"])
    assert refused.value.problems == ["PLATFORM_ENVS: no environment file for qa; available: prod"]


def test_the_named_override_turns_prod_protection_off_and_is_said_out_loud(tmp_path):
    data = copy.deepcopy(PROD)
    data["protection"] = {"prevent_destroy": False,
                          "unprotected_prod_override": "jane@example.com: INC-4711 account move, until 2026-12-01"}
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(data))
    environment = load_environment(path)
    assert environment.protection.prevent_destroy is False
    assert environment.warnings() == [
        "prod: stateful resources are NOT protected from destroy (protection.unprotected_prod_override: "
        "jane@example.com: INC-4711 account move, until 2026-12-01)"]


def _prod_on(tmp_path: Path, version: str, today: date):
    data = copy.deepcopy(PROD)
    data["cluster"]["kubernetes_version"] = version
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_environment(path, today=today)


def test_a_version_past_its_end_of_support_is_refused_on_that_day_and_allowed_lists_only_supported_ones(tmp_path):
    calendar = load_catalogue().kubernetes_versions
    version, release = next(iter(calendar.items()))
    day_after = release.end_of_extended_support + timedelta(days=1)
    with pytest.raises(EnvironmentFileError) as refused:
        _prod_on(tmp_path, version, day_after)
    [problem] = refused.value.problems
    assert problem.startswith(f"{tmp_path / 'prod.yaml'}: cluster.kubernetes_version: '{version}' reached the end")
    allowed = problem.split("allowed: ")[1].split(", ")
    assert version not in allowed
    assert allowed == [v for v, r in calendar.items() if r.end_of_extended_support >= day_after]
    assert _prod_on(tmp_path, version, release.end_of_extended_support).cluster.kubernetes_version == version


def test_a_version_in_extended_support_synthesizes_with_a_warning_naming_the_standard_versions(tmp_path):
    calendar = load_catalogue().kubernetes_versions
    for version, release in calendar.items():
        in_extended = release.end_of_standard_support + timedelta(days=1)
        warnings = _prod_on(tmp_path, version, in_extended).warnings(today=in_extended)
        [warning] = [w for w in warnings if "kubernetes_version" in w]
        assert f"{version} is in EKS extended support" in warning
        standard = [v for v, r in calendar.items() if r.released <= in_extended <= r.end_of_standard_support]
        assert warning.endswith(", ".join(standard) or "none in the catalogue")
        on_last_standard_day = release.end_of_standard_support
        assert not [w for w in _prod_on(tmp_path, version, on_last_standard_day).warnings(today=on_last_standard_day)
                    if "kubernetes_version" in w]


def test_a_gpu_pool_created_above_its_minimum_is_said_out_loud_and_a_cpu_pool_is_not(tmp_path):
    data = copy.deepcopy(PROD)
    pool(data, "h100-timeslice").update(min_size=0, desired_size=1)
    pool(data, "cpu").update(min_size=3, desired_size=4)
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(data))
    warnings = load_environment(path).warnings()
    assert [w.split(" is above")[0] for w in warnings if "desired_size" in w] == \
        ["prod: node_pools.h100-timeslice.desired_size 1"]
