"""A Secret synced from a password AWS rotates (the RDS-managed master password) follows the rotation, and every
workload that reads it at start restarts when it changes: External Secrets polls often, Reloader watches the
namespace and the reader's Deployment names the Secret. Otherwise, after the first rotation, new database logins
fail until someone restarts the pods."""

import copy
import re

import pytest
import yaml

from tests_support import resources

ENVIRONMENTS = ["dev", "staging", "prod"]
#: Longest tolerated gap between a rotation and the Secret's update (then the restart takes a rollout).
MAX_REFRESH_SECONDS = 5 * 60
RELOAD_ANNOTATION = "secret.reloader.stakater.com/reload"
AUTO_ANNOTATION = "reloader.stakater.com/auto"


def seconds(duration):
    units = {"s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+)([smh])", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


def mentions(tree, text):
    if isinstance(tree, dict):
        return any(mentions(v, text) for v in tree.values())
    if isinstance(tree, list):
        return any(mentions(v, text) for v in tree)
    return tree == text


def releases(stack):
    return {address: {**body, "parsed": yaml.safe_load(body["values"][0])}
            for address, body in resources(stack, "helm_release").items()}


def rotating_secrets(stack):
    """(namespace, Secret name, refresh interval) of every ExternalSecret that copies an RDS-managed password."""
    found = []
    for release in releases(stack).values():
        if release["chart"] != "raw":
            continue
        for manifest in release["parsed"]["resources"]:
            if manifest["kind"] == "ExternalSecret" and any(
                    "master_user_secret" in d["remoteRef"]["key"] for d in manifest["spec"].get("data", [])):
                found.append((manifest["metadata"]["namespace"], manifest["spec"]["target"]["name"],
                              manifest["spec"]["refreshInterval"]))
    return found


def rotation_problems(stack):
    """Why a rotation would leave a reader with the old password; empty when every reader follows it."""
    problems = []
    by_address = releases(stack)
    secrets = rotating_secrets(stack)
    assert secrets, "no Secret copies an RDS-managed password"
    for namespace, secret, interval in secrets:
        if seconds(interval) > MAX_REFRESH_SECONDS:
            problems.append(f"{namespace}/{secret}: refreshed every {interval}, more than {MAX_REFRESH_SECONDS}s")
        # A W&B server reads it through its custom resource; the server chart's own Reloader restarts it.
        servers = [m for r in by_address.values() if r["chart"] == "raw" for m in r["parsed"]["resources"]
                   if m["kind"] == "WeightsAndBiases" and m["metadata"]["namespace"] == namespace
                   and mentions(m["spec"]["values"], secret)]
        problems += [f"W&B server {m['metadata']['name']} reads {namespace}/{secret} without its bundled Reloader"
                     for m in servers if not (m["spec"]["values"].get("reloader") or {}).get("install")]
        readers = [r for r in by_address.values()
                   if r["namespace"] == namespace and r["chart"] not in ("raw", "reloader")
                   and mentions(r["parsed"], secret)]
        if not readers and not servers:
            problems.append(f"{namespace}/{secret}: nothing reads it")
        watchers = {address: r for address, r in by_address.items() if r["chart"] == "reloader"
                    and not r["parsed"]["reloader"].get("ignoreSecrets")
                    and (r["namespace"] == namespace or r["parsed"]["reloader"].get("watchGlobally", True))}
        if readers and not watchers:
            problems.append(f"{namespace}/{secret}: no Reloader watches the Secrets of {namespace}")
        for reader in readers:
            annotations = reader["parsed"].get("deploymentAnnotations") or {}
            named = secret in [s.strip() for s in annotations.get(RELOAD_ANNOTATION, "").split(",")]
            if not (named or annotations.get(AUTO_ANNOTATION) == "true"):
                problems.append(f"{reader['name']} reads {namespace}/{secret} at start, and its Deployment does "
                                f"not ask to be restarted when the Secret changes")
            waits_for = reader.get("depends_on") or []
            if not any(f"helm_release.{w}" in waits_for for w in watchers):
                problems.append(f"{reader['name']} is installed without waiting for the Reloader")
    return problems


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_reader_of_a_rotating_database_password_restarts_when_it_changes(stacks, env_name):
    assert rotation_problems(stacks[f"{env_name}-workloads"]) == []


def _with_values(stack, change):
    """A copy of the stack where ``change(name, values)`` edited each release's values."""
    broken = copy.deepcopy(stack)
    for body in resources(broken, "helm_release").values():
        values = yaml.safe_load(body["values"][0])
        change(body["name"], values)
        body["values"] = [yaml.safe_dump(values)]
    return broken


def test_mlflow_without_the_reload_annotation_is_caught(stacks):
    def drop_annotation(name, values):
        if name == "mlflow":
            values.pop("deploymentAnnotations", None)
    problems = rotation_problems(_with_values(stacks["prod-workloads"], drop_annotation))
    assert problems == ["mlflow reads mlops/mlflow-database at start, and its Deployment does not ask to be "
                        "restarted when the Secret changes"]


def test_a_slow_refresh_or_no_reloader_is_caught(stacks):
    def hourly(name, values):
        for manifest in values.get("resources", []) if name == "mlops-resources" else []:
            manifest["spec"]["refreshInterval"] = "1h"
    assert any("refreshed every 1h" in p for p in rotation_problems(_with_values(stacks["prod-workloads"], hourly)))

    without = copy.deepcopy(stacks["prod-workloads"])
    helm = without["resource"]["helm_release"]
    for address in [a for a, body in helm.items() if body["chart"] == "reloader"]:
        del helm[address]
    assert "mlops/mlflow-database: no Reloader watches the Secrets of mlops" in rotation_problems(without)


def test_durations_parse_as_external_secrets_writes_them():
    assert seconds("1m") == 60 and seconds("1h30m") == 5400 and seconds("45s") == 45


def test_a_self_managed_wandb_server_follows_the_rotation_with_its_bundled_reloader(environments):
    """The committed environments run no W&B server; its manifests, as the workloads layer would deliver them."""
    from platform_config.wandb_server import WandbServerRefs, server_manifests
    from platform_config.wandb_settings import WandbServer

    env = environments["prod"]
    server = WandbServer.model_validate({"host": "wandb.example.com",
                                         "certificate_arn": f"arn:aws:acm:{env.region}:{env.account_id}:certificate/1"})
    refs = WandbServerRefs(bucket_name="b", kms_key_arn="k", database_host="h", license_secret="l",
                           database_secret_arn="${aws_db_instance.wandb.master_user_secret[0].secret_arn}")

    def stack(manifests):
        return {"resource": {"helm_release": {"wandb-server": {
            "name": "wandb-server", "chart": "raw", "namespace": "wandb",
            "values": [yaml.safe_dump({"resources": manifests})]}}}}

    manifests = server_manifests(server, region=env.region, refs=refs)
    assert rotation_problems(stack(manifests)) == []
    for manifest in manifests:
        if manifest["kind"] == "WeightsAndBiases":
            manifest["spec"]["values"]["reloader"]["install"] = False
    assert rotation_problems(stack(manifests)) == [
        "W&B server wandb reads wandb/wandb-mysql without its bundled Reloader"]
