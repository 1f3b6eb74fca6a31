"""The Kubernetes objects the platform authors are valid for the cluster's version and say what we mean."""

from ipaddress import ip_network

import kubernetes_validate
import pytest

from platform_config import cluster_objects, external_secrets
from platform_config.data_layer import platform_secrets
from platform_config.models import Exposure
from tests_support import ENVIRONMENT_NAMES


def authored_manifests(env):
    return [*cluster_objects.namespaces(), *cluster_objects.namespace_guardrails(env),
            *cluster_objects.storage_classes(volume_key_arn="${aws_kms_key.k.arn}", file_system_id="fs-123",
                                             retain=True)]


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_every_authored_built_in_object_validates_against_the_clusters_kubernetes_schemas(environments, env_name):
    env = environments[env_name]
    for manifest in authored_manifests(env):
        kubernetes_validate.validate(manifest, env.cluster.kubernetes_version, strict=True)


def test_the_validator_catches_a_misspelled_field():
    broken = cluster_objects.limit_range("training")
    broken["spec"]["limit"] = broken["spec"].pop("limits")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.33", strict=True)


def test_application_namespaces_are_meshed_with_mtls_enforced_and_pod_security_labels():
    namespaces = {m["metadata"]["name"]: m["metadata"] for m in cluster_objects.namespaces()}
    for name in ("inference", "training", "agentic", "mlops"):
        meta = namespaces[name]
        assert meta["annotations"]["linkerd.io/inject"] == "enabled"
        assert meta["annotations"]["config.linkerd.io/default-inbound-policy"] == "all-authenticated"
        assert meta["labels"]["pod-security.kubernetes.io/enforce"] in ("restricted", "baseline")
    assert namespaces["inference"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for name in ("gpu-operator", "monitoring", "linkerd", "logging"):
        assert namespaces[name]["annotations"]["linkerd.io/inject"] == "disabled"


def test_each_application_namespace_denies_all_traffic_by_default(environments):
    guardrails = cluster_objects.namespace_guardrails(environments["prod"])
    for namespace in ("inference", "training", "agentic", "mlops"):
        deny = next(m for m in guardrails if m["kind"] == "NetworkPolicy"
                    and m["metadata"] == {"name": "default-deny", "namespace": namespace})
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@pytest.mark.parametrize(("http", "tcp"), [
    ("internal", "internal"), ("internet-facing", "internet-facing"), ("internet-facing", "internal")])
def test_inference_admits_its_load_balancers_from_the_public_subnets_only_whatever_their_scheme(
        environments, http, tcp):
    """The inference edge places its load balancers in the public subnets (the controller's subnets annotation),
    internal ones too: the serving ports admit those subnets, never the private ones where every node and pod is
    (they would reach the models by address, around the mesh)."""
    env = environments["prod"]
    certificate = "arn:aws:acm:us-east-1:333333333333:certificate/example"
    clients = [ip_network("192.168.0.0/16")]
    inference = env.workloads.inference.model_copy(update={
        "http": Exposure(scheme=http, certificate_arn=certificate, clients=clients),
        "tcp": Exposure(scheme=tcp, certificate_arn=certificate, clients=clients)})
    variant = env.model_copy(update={"workloads": env.workloads.model_copy(update={"inference": inference})})
    public = [str(s) for s in env.network.public_subnets]
    assert cluster_objects.address_ranges(variant)["LOAD_BALANCER_SUBNETS"] == public
    [allow] = [m for m in cluster_objects.namespace_guardrails(variant) if m["kind"] == "NetworkPolicy"
               and m["metadata"] == {"name": "allow-load-balancers", "namespace": "inference"}]
    admitted = [peer["ipBlock"]["cidr"] for rule in allow["spec"]["ingress"] for peer in rule["from"]]
    assert admitted == public
    assert not [a for a in admitted for s in env.network.private_subnets if ip_network(a).overlaps(s)]


def test_quotas_cap_gpus_and_mig_slices_per_namespace_from_the_environment_file(environments):
    """Every application namespace's quota is the file's: GPUs and each MIG profile's slices, and a namespace
    that the file gives no GPUs gets an explicit 0 (a quota without the resource would not limit it)."""
    for env in environments.values():
        quotas = {m["metadata"]["namespace"]: m["spec"]["hard"]
                  for m in cluster_objects.namespace_guardrails(env) if m["kind"] == "ResourceQuota"}
        assert set(quotas) == set(env.platform.namespace_quotas), env.name
        for namespace, quota in env.platform.namespace_quotas.items():
            hard = quotas[namespace]
            assert hard["requests.nvidia.com/gpu"] == str(quota.gpus), (env.name, namespace)
            assert {key: value for key, value in hard.items() if key.startswith("requests.nvidia.com/mig-")} == {
                f"requests.nvidia.com/mig-{profile}": str(count) for profile, count in quota.mig_slices.items()}, \
                (env.name, namespace)
            assert (hard["requests.cpu"], hard["requests.memory"]) == (quota.cpu, quota.memory), (env.name, namespace)


def test_the_default_storage_class_is_gp3_encrypted_with_the_given_key():
    gp3, efs = cluster_objects.storage_classes(volume_key_arn="arn:key", file_system_id="fs-1", retain=False)
    assert gp3["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert gp3["parameters"] == {"type": "gp3", "encrypted": "true", "kmsKeyId": "arn:key"}
    assert (gp3["reclaimPolicy"], efs["reclaimPolicy"]) == ("Delete", "Delete")
    assert efs["parameters"]["provisioningMode"] == "efs-ap"


def test_every_catalogue_secret_is_synced_to_each_of_its_namespaces():
    synced = {(m["metadata"]["namespace"], m["metadata"]["name"]): m["spec"]
              for m in external_secrets.external_secrets("prod")}
    for key, entry in platform_secrets().items():
        for namespace in entry.synced_to:
            spec = synced[(namespace, entry.kubernetes_secret.name)]
            remote_keys = [d["remoteRef"]["key"] for d in spec.get("data", [])] + \
                [d["extract"]["key"] for d in spec.get("dataFrom", [])]
            assert f"mlops-prod/{key}" in remote_keys
    assert synced[("monitoring", "alertmanager-keys")]["data"] == [
        {"secretKey": "slack-webhook-url", "remoteRef": {"key": "mlops-prod/alertmanager-slack-webhook"}},
        {"secretKey": "pagerduty-routing-key", "remoteRef": {"key": "mlops-prod/alertmanager-pagerduty-routing-key"}}]


def test_every_external_secret_uses_the_secret_store_of_its_own_namespace():
    for manifest in external_secrets.external_secrets("prod"):
        assert manifest["spec"]["secretStoreRef"] == {"kind": "SecretStore", "name": external_secrets.STORE_NAME}
