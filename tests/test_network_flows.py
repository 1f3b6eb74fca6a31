"""The synthesized NetworkPolicies of each environment allow the flows of platform_config/data/required_flows.yaml
and nothing else: each namespace denies by default, every required flow passes the source's egress and the
destination's ingress, and no flow outside the list passes both (tests/network_policy_semantics.py decides)."""

import pytest
from network_flows import KUBE_SYSTEM, ClusterNetwork, load_flows, missing_required, network_roles, unlisted_allowed

from platform_config import cluster_objects, wandb_server
from platform_config.wandb_settings import WandbServer
from tests_support import ENVIRONMENT_NAMES

FLOWS = load_flows()


@pytest.fixture(scope="module")
def clusters(stacks, environments) -> dict[str, ClusterNetwork]:
    return {name: ClusterNetwork.from_synth(stacks, env) for name, env in environments.items()}


@pytest.fixture(scope="module")
def wandb_cluster(environments) -> ClusterNetwork:
    """The first environment with a self-managed W&B server behind an internet-facing ALB (no committed
    environment runs one): its namespace and policies as the workloads layer emits them."""
    env = environments[ENVIRONMENT_NAMES[0]]
    server = WandbServer.model_validate({
        "host": "wandb.example.com", "scheme": "internet-facing",
        "certificate_arn": f"arn:aws:acm:{env.region}:{env.account_id}:certificate/0000-1111"})
    wandb = env.workloads.wandb.model_copy(update={"self_managed": True, "server": server, "base_url": server.url})
    variant = env.model_copy(update={"workloads": env.workloads.model_copy(update={"wandb": wandb})})
    return ClusterNetwork.from_manifests([
        *cluster_objects.namespaces(), *cluster_objects.namespace_guardrails(variant),
        cluster_objects.namespace_manifest(wandb_server.NAMESPACE, "restricted", meshed=False),
        *cluster_objects.network_policies(wandb_server.NAMESPACE, cluster_objects.address_ranges(variant),
                                          system=True)], variant)


def _is_default_deny(policy) -> bool:
    spec = policy["spec"]
    return (not (spec.get("podSelector") or {}) and {"Ingress", "Egress"} <= set(spec.get("policyTypes") or [])
            and not spec.get("ingress") and not spec.get("egress"))


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_every_namespace_kube_system_included_denies_all_traffic_by_default(clusters, env_name):
    cluster = clusters[env_name]
    denied = {p["metadata"]["namespace"] for p in cluster.policies if _is_default_deny(p)}
    assert set(cluster.namespaces) - denied == set()


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_every_required_flow_passes_the_sources_egress_and_the_destinations_ingress(clusters, env_name):
    assert missing_required(clusters[env_name], FLOWS) == []


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_no_flow_outside_the_list_passes_both_sides(clusters, env_name):
    assert unlisted_allowed(clusters[env_name], FLOWS) == []


def test_a_self_managed_wandb_namespace_denies_by_default_and_allows_exactly_its_flows(wandb_cluster):
    assert any(p["metadata"]["namespace"] == wandb_server.NAMESPACE and _is_default_deny(p)
               for p in wandb_cluster.policies)
    assert missing_required(wandb_cluster, FLOWS) == []
    assert unlisted_allowed(wandb_cluster, FLOWS) == []


def test_the_flow_list_names_only_namespaces_and_network_roles_the_platform_has(environments):
    known = {KUBE_SYSTEM, *cluster_objects.application_namespaces(), *cluster_objects.system_namespaces(),
             wandb_server.NAMESPACE}
    roles = set(network_roles(next(iter(environments.values()))))
    for entry in [*FLOWS["required"], *FLOWS["tolerated"]]:
        assert entry["why"].strip(), entry
        for side in (entry["from"], entry["to"]):
            if "network" in side:
                assert side["network"] in roles, entry
            names = side.get("namespaces")
            if isinstance(names, list) or "namespace" in side:
                assert set(names if isinstance(names, list) else [side["namespace"]]) <= known, entry
            elif names is not None:
                assert names in ("every", "application", "system"), entry


def test_every_required_entry_is_a_flow_in_some_environment(clusters, wandb_cluster):
    """An entry whose namespaces no environment creates would pass without checking anything."""
    for entry in FLOWS["required"]:
        assert any(c.endpoints(entry["from"]) and any(c.endpoints(entry["to"], source=s)
                                                      for s in c.endpoints(entry["from"]))
                   for c in [*clusters.values(), wandb_cluster]), entry


# --- the checks above fail when a defect is put back (on a copy of the first environment's policies) ---
@pytest.fixture(scope="module")
def cluster(clusters) -> ClusterNetwork:
    return clusters[ENVIRONMENT_NAMES[0]]


def test_dropping_a_namespaces_dns_allow_fails_its_required_dns_flow(cluster):
    namespace = cluster.application[0]
    policies = [p for p in cluster.copy_of_policies() if p["metadata"] != {"name": "allow-dns", "namespace": namespace}]
    missing = missing_required(cluster.with_policies(policies), FLOWS)
    assert missing and all(m.startswith(f"{namespace}/* -> kube-system/{{k8s-app=kube-dns}} 53/") for m in missing)


def test_the_mesh_flows_fail_when_a_policy_opens_the_application_port_instead_of_the_proxys(cluster):
    policies = cluster.copy_of_policies()
    for policy in policies:
        for rule in policy["spec"].get("egress") or []:
            for port in rule.get("ports") or []:
                if port["port"] == 4143:
                    port["port"] = 5000
    assert any(" 4143/TCP (" in m for m in missing_required(cluster.with_policies(policies), FLOWS))


def test_an_allow_all_ingress_policy_lets_unlisted_flows_through(cluster):
    allow_all = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": "allow-all", "namespace": KUBE_SYSTEM},
                 "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}}
    found = unlisted_allowed(cluster.with_policies([*cluster.copy_of_policies(), allow_all]), FLOWS)
    assert any(f.endswith(f"-> {KUBE_SYSTEM}/* 22/TCP") for f in found)


def test_admitting_the_control_plane_on_every_port_lets_unlisted_flows_through(cluster):
    policies = cluster.copy_of_policies()
    for policy in policies:
        if policy["metadata"]["name"] == "allow-control-plane":
            for rule in policy["spec"]["ingress"]:
                rule.pop("ports", None)
    assert unlisted_allowed(cluster.with_policies(policies), FLOWS)


def test_an_https_egress_without_the_link_local_exception_reaches_the_metadata_service(cluster):
    policies = cluster.copy_of_policies()
    for policy in policies:
        for rule in policy["spec"].get("egress") or []:
            for peer in rule.get("to") or []:
                peer.get("ipBlock", {}).pop("except", None)
    assert any("-> instance-metadata 443/TCP" in f for f in unlisted_allowed(cluster.with_policies(policies), FLOWS))
