"""Every problem of every environment file in one pass (platform_config/environment_check.py, what `main.py` runs
before it synthesizes anything): field errors, cross-field rules, scheduling, admission and quotas, each line naming
the file to change. In-process: nothing is synthesized."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from platform_config.catalogue import load_catalogue
from platform_config.cluster_objects import quota_field, resource_quota
from platform_config.environment_check import check_environment_files
from platform_config.helm_values import PodValues, values_file_problems, values_file_setting
from platform_config.loader import DEFAULT_ENV_DIR, load_environment
from platform_config.resource_admission import (
    AdmissionProblem,
    NamespaceRules,
    admission_problems,
    chart_deployment,
)

COMMITTED = {name: yaml.safe_load((DEFAULT_ENV_DIR / f"{name}.yaml").read_text()) for name in ("dev", "prod")}


def write(folder: Path, name: str, data: dict) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def unoffered_mig_profile(data: dict) -> str:
    """A MIG profile of the GPUs of the environment's MIG pools that none of those pools' layouts carries."""
    pools = [p["gpu"] for p in data["node_pools"].values() if (p.get("gpu") or {}).get("sharing", {}).get("mode")
             == "mig"]
    offered = {profile for gpu in pools for profile in gpu["sharing"]["layout"]}
    return sorted(set(load_catalogue().gpu_models[pools[0]["model"]].mig_profiles) - offered)[0]


def test_field_cross_field_scheduling_and_quota_problems_of_two_files_are_reported_together(tmp_path):
    """GIVEN prod with a field error, a quota naming a MIG profile no pool offers (cross-field), a deployment
    requesting that profile (scheduling) and a CPU quota of 1 in the training namespace (quota), and dev with an
    unquoted account id THEN one check reports all five, in that order of kinds, each naming its file and field."""
    prod, dev = copy.deepcopy(COMMITTED["prod"]), copy.deepcopy(COMMITTED["dev"])
    profile = unoffered_mig_profile(prod)
    prod["data"]["database"]["backup_retention_days"] = 40
    prod["platform"]["namespace_quotas"]["inference"]["mig_slices"][profile] = 1000
    deployment, settings = next((name, settings) for name, settings in
                                prod["workloads"]["inference"]["deployments"].items() if settings.get("enabled", True))
    settings["placement"]["gpu"] = {"resource": f"nvidia.com/mig-{profile}"}
    prod["platform"]["namespace_quotas"]["training"]["cpu"] = "1"
    dev["account_id"] = 12345678901
    files = [write(tmp_path, "dev", dev), write(tmp_path, "prod", prod)]

    check = check_environment_files(files)

    assert check.environments == []
    assert check.title == "Invalid environment configuration"
    dev_file, prod_file = (str(path) for path in files)
    assert [line.split(": ")[:2] for line in check.problems] == [
        [dev_file, "account_id"],
        [prod_file, "data.database.backup_retention_days"],
        [prod_file, "platform.namespace_quotas.inference.mig_slices"],
        [prod_file, "workloads of environment prod"],
        [prod_file, "platform.namespace_quotas.training.cpu"]]
    _, _, cross_field, scheduling, quota = check.problems
    assert f"{profile} offered by no MIG pool" in cross_field
    assert f"inference/{deployment} requests nvidia.com/mig-{profile} x1: no pool offers it" in scheduling
    assert quota.split(": ", 2)[2].startswith("ResourceQuota requests.cpu 1 of namespace training cannot hold the "
                                              "namespace's workloads at their largest, which request ")
    assert "(allowed: at least " in quota


def test_the_committed_environments_pass_every_check():
    check = check_environment_files(sorted(DEFAULT_ENV_DIR.glob("*.yaml")))
    assert check.problems == []
    assert [e.name for e in check.environments] == [p.stem for p in sorted(DEFAULT_ENV_DIR.glob("*.yaml"))]


def test_a_workload_check_that_reads_a_field_in_error_waits_for_the_next_round(tmp_path):
    """The pools' GPUs are what scheduling places workloads on: with a GPU pool in error, no scheduling problem is
    guessed from the rest."""
    prod = copy.deepcopy(COMMITTED["prod"])
    name = next(n for n, p in prod["node_pools"].items() if p.get("gpu"))
    prod["node_pools"][name]["gpu"]["model"] = "Z100"
    check = check_environment_files([write(tmp_path, "prod", prod)])
    assert [line.split(": ")[1] for line in check.problems] == [f"node_pools.{name}.gpu.model"]


def test_a_container_refused_for_what_a_values_file_sets_names_that_values_file(tmp_path):
    folder = tmp_path / "server"
    folder.mkdir()
    (folder / "values.yaml").write_text("server: {resources: {requests: {cpu: '1'}}}\n")
    (folder / "values-prod.yaml").write_text("server: {resources: {requests: {cpu: '3'}, limits: {cpu: '2'}}}\n")
    shown = values_file_setting("server", "prod", "server.resources", values_dir=tmp_path)
    assert shown.endswith("server/values-prod.yaml")
    assert values_file_setting("server", "dev", "server.resources", values_dir=tmp_path).endswith(
        "server/values.yaml")
    pods = PodValues(replicas="server.replicas", resources="server.resources")
    manifest = chart_deployment("server", "mlops", {"server": {"resources": {
        "requests": {"cpu": "3"}, "limits": {"cpu": "2"}}}}, pods, values_file=shown)

    [problem] = admission_problems({"mlops": NamespaceRules(limit_range=None, quota=None)}, [manifest])

    assert problem == AdmissionProblem(
        field="server.resources", values_file=shown,
        message="mlops/Deployment server spec.template.spec.containers server: cpu request 3 is above its limit 2")
    assert problem.line(environment_file="environments/prod.yaml", environment_name="prod") == (
        f"{shown}: server.resources: environment prod: mlops/Deployment server spec.template.spec.containers "
        "server: cpu request 3 is above its limit 2")


def test_an_unreadable_values_file_is_reported_with_the_environment_files(tmp_path):
    folder = tmp_path / "server"
    folder.mkdir()
    (folder / "values.yaml").write_text("replicas: 1\n")
    (folder / "values-prod.yaml").write_text("image:\n  tag: a\n   pull: Always\n")
    (folder / "values-dev.yaml").write_text("- a list\n")
    [problem] = values_file_problems(["prod"], values_dir=tmp_path)
    assert problem.startswith(f"{folder / 'values-prod.yaml'}:3:")


def test_each_resource_quota_key_names_the_field_of_the_environment_file_that_sets_it():
    for path in sorted(DEFAULT_ENV_DIR.glob("*.yaml")):
        for namespace, quota in load_environment(path).platform.namespace_quotas.items():
            for key, value in resource_quota(namespace, quota)["spec"]["hard"].items():
                field = quota_field(namespace, key).removeprefix(f"platform.namespace_quotas.{namespace}.")
                name, _, profile = field.partition(".")
                assert str(getattr(quota, name)[profile] if profile else getattr(quota, name)) == value, key
