"""The <env>-platform stacks: providers from the cluster layer, pinned Helm releases with their merged values,
GPU sharing from one source, namespaces and their guardrails."""

import json
import re

import kubernetes_validate
import pytest
import yaml

from platform_config import cluster_objects, gpu_sharing
from platform_config.helm_values import chart_catalogue
from tests_support import KIND_OF, manifest_of, namespace_names, resources

ENVIRONMENTS = ["dev", "staging", "prod"]


def releases(stack) -> dict[str, dict]:
    return {r["name"]: r for r in resources(stack, "helm_release").values()}


def values(stack, release) -> dict:
    [text] = releases(stack)[release]["values"]
    return yaml.safe_load(text)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_kubernetes_and_helm_providers_come_from_the_cluster_layer_with_exec_auth(stacks, environments, env_name):
    provider = stacks[f"{env_name}-platform"]["provider"]
    remote = f"data.terraform_remote_state.cross-stack-reference-input-{env_name}-cluster.outputs."
    [kubernetes], [helm] = provider["kubernetes"], provider["helm"]
    for config, exec_block in ((kubernetes, kubernetes["exec"][0]), (helm["kubernetes"], helm["kubernetes"]["exec"])):
        assert config["host"].startswith("${" + remote)
        assert config["cluster_ca_certificate"].startswith("${base64decode(" + remote)
        assert exec_block["command"] == "aws"
        assert exec_block["args"] == ["eks", "get-token", "--cluster-name", environments[env_name].cluster_name,
                                      "--region", environments[env_name].region]


def test_no_provider_of_the_platform_layer_is_configured_from_its_own_resources(stacks):
    for env_name in ENVIRONMENTS:
        provider_text = json.dumps(stacks[f"{env_name}-platform"]["provider"])
        for own_type in stacks[f"{env_name}-platform"]["resource"]:
            assert f"{own_type}." not in provider_text


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_release_is_pinned_exactly_from_the_catalogue_into_a_namespace_that_exists(stacks, env_name):
    platform, workloads = stacks[f"{env_name}-platform"], stacks[f"{env_name}-workloads"]
    namespaces = {n["metadata"]["name"] for n in resources(platform, "kubernetes_namespace_v1").values()}
    catalogue = chart_catalogue()
    installed = {**releases(platform), **releases(workloads)}
    pins = {(pin.repository, pin.chart, pin.version) for pin in catalogue.values()}
    # Every catalogue entry is installed, except the self-managed W&B operator that no environment asks for.
    assert set(catalogue) - set(installed) == {"wandb-operator"}
    for name, release in installed.items():
        assert (release["repository"], release["chart"], release["version"]) in pins, name
        assert re.match(r"^v?\d+\.\d+\.\d+$", release["version"])
        assert release["repository"].startswith(("https://", "oci://"))
        assert release["namespace"] in namespaces | {"kube-system"}
        assert release["atomic"] is True and release["create_namespace"] is False


def test_values_carry_no_template_syntax_but_the_references_the_code_injects(stacks):
    for env_name in ENVIRONMENTS:
        installed = {**releases(stacks[f"{env_name}-platform"]), **releases(stacks[f"{env_name}-workloads"])}
        for name, release in installed.items():
            for match in re.finditer(r"[$%]\{", release["values"][0]):
                following = release["values"][0][match.start():match.start() + 40]
                assert re.match(r"\$\{(data\.terraform_remote_state|aws_)", following), \
                    (env_name, name, following)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_gpu_pool_label_names_an_entry_of_the_gpu_operator_values_with_the_environment_settings(
        stacks, environments, env_name):
    env = environments[env_name]
    operator = values(stacks[f"{env_name}-platform"], "gpu-operator")
    assert operator["driver"]["enabled"] is False and operator["toolkit"]["enabled"] is False
    assert operator["mig"]["strategy"] == "mixed"
    plugin = operator["devicePlugin"]["config"]
    plugin_entries = {key: yaml.safe_load(text) for key, text in plugin["data"].items()}
    mig_configs = yaml.safe_load(operator["migManager"]["config"]["data"]["config.yaml"])["mig-configs"]
    node_groups = {g["node_group_name"]: g for g in resources(stacks[f"{env_name}-cluster"],
                                                                "aws_eks_node_group").values()}
    for name, pool in env.gpu_pools().items():
        labels = node_groups[name]["labels"]
        if pool.gpu.sharing.mode.value == "mig":
            [layout] = mig_configs[labels["nvidia.com/mig.config"]]
            assert layout["mig-devices"] == pool.gpu.sharing.layout
        elif pool.gpu.sharing.mode.value == "exclusive":
            # Whole GPUs: the entry sets no sharing, so the plugin advertises each GPU once and allows several.
            assert plugin_entries[labels["nvidia.com/device-plugin.config"]] == {"version": "v1"}
        else:
            entry = plugin_entries[labels["nvidia.com/device-plugin.config"]]
            [resource] = entry["sharing"]["timeSlicing"]["resources"]
            assert resource == {"name": "nvidia.com/gpu", "replicas": pool.gpu.sharing.replicas}
    assert mig_configs["all-disabled"] == [{"devices": "all", "mig-enabled": False}]
    assert operator["dcgmExporter"]["serviceMonitor"]["enabled"] is True
    assert operator["dcgmExporter"]["serviceMonitor"]["additionalLabels"]["release"] == "kube-prometheus-stack"


def test_prometheus_alertmanager_and_grafana_are_wired_for_gpus_and_paging(stacks):
    monitoring = values(stacks["prod-platform"], "kube-prometheus-stack")
    storage = monitoring["prometheus"]["prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert storage["storageClassName"] == "gp3-encrypted"
    assert monitoring["prometheus"]["prometheusSpec"]["retention"]
    assert "alertmanager-keys" in monitoring["alertmanager"]["alertmanagerSpec"]["secrets"]
    receivers = json.dumps(monitoring["alertmanager"]["config"]["receivers"])
    assert "/etc/alertmanager/secrets/alertmanager-keys/slack-webhook-url" in receivers
    assert "/etc/alertmanager/secrets/alertmanager-keys/pagerduty-routing-key" in receivers
    rules = json.dumps(monitoring["additionalPrometheusRulesMap"])
    for metric in ("DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_GPU_UTIL"):
        assert metric in rules
    assert monitoring["grafana"]["admin"]["existingSecret"] == "grafana-admin"
    assert "DCGM_FI_DEV_GPU_UTIL" in json.dumps(monitoring["grafana"])


def test_meshed_pods_need_no_extra_capability_because_the_cni_plugin_redirects_traffic(stacks):
    for env_name in ENVIRONMENTS:
        assert values(stacks[f"{env_name}-platform"], "linkerd-control-plane")["cniEnabled"] is True


def test_prod_runs_the_mesh_control_plane_highly_available(stacks):
    assert values(stacks["prod-platform"], "linkerd-control-plane")["enablePodAntiAffinity"] is True


def test_argocd_root_application_points_at_the_environments_gitops_path(stacks, environments):
    for env_name in ENVIRONMENTS:
        root = values(stacks[f"{env_name}-platform"], "argocd-apps")["applications"]["platform-root"]
        gitops = environments[env_name].platform.gitops
        assert root["source"] == {**root["source"], "repoURL": gitops.repository_url,
                                  "targetRevision": gitops.revision, "path": gitops.path}
        assert root["syncPolicy"]["automated"]["prune"] is True


def test_platform_resources_deliver_the_secret_store_and_external_secrets(stacks):
    manifests = values(stacks["prod-platform"], "platform-resources")["resources"]
    kinds = [m["kind"] for m in manifests]
    assert "ClusterSecretStore" not in kinds
    assert kinds.count("SecretStore") == kinds.count("ServiceAccount") >= 6 and kinds.count("ExternalSecret") >= 8


def test_objects_of_a_namespace_reference_their_namespace_resource(stacks):
    stack = stacks["prod-platform"]
    references = namespace_names(stack)
    for resource_type in ("kubernetes_network_policy_v1", "kubernetes_resource_quota_v1",
                          "kubernetes_limit_range_v1"):
        for body in resources(stack, resource_type).values():
            # kube-system is created by EKS, not by the platform: its objects name it.
            assert body["metadata"]["namespace"] in references or body["metadata"]["namespace"] == "kube-system"


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_synthesized_kubernetes_object_is_valid_for_the_clusters_version(stacks, environments, env_name):
    stack = stacks[f"{env_name}-platform"]
    version = environments[env_name].cluster.kubernetes_version
    count = 0
    for resource_type in KIND_OF:
        for body in resources(stack, resource_type).values():
            kubernetes_validate.validate(manifest_of(resource_type, body, stack), version, strict=True)
            count += 1
    assert count >= 12 + 4 * 3


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_synthesized_kubernetes_objects_are_exactly_the_authored_manifests(stacks, environments, env_name):
    stack = stacks[f"{env_name}-platform"]
    emitted = [manifest_of(t, body, stack) for t in KIND_OF for body in resources(stack, t).values()]
    env = environments[env_name]
    authored = [*cluster_objects.namespaces(), *cluster_objects.namespace_guardrails(env)]
    key = lambda m: (m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"])  # noqa: E731
    by_key = {key(m): m for m in emitted}
    for manifest in authored:
        assert by_key[key(manifest)] == manifest


def test_application_namespaces_are_meshed_with_enforced_mtls_and_deny_by_default(stacks):
    stack = stacks["prod-platform"]
    namespaces = {n["metadata"]["name"]: n["metadata"] for n in resources(stack, "kubernetes_namespace_v1").values()}
    policies = {(m["metadata"]["namespace"], m["metadata"]["name"]): m["spec"]
                for m in (manifest_of("kubernetes_network_policy_v1", p, stack)
                          for p in resources(stack, "kubernetes_network_policy_v1").values())}
    for namespace in ("inference", "training", "agentic", "mlops"):
        assert namespaces[namespace]["annotations"]["linkerd.io/inject"] == "enabled"
        assert namespaces[namespace]["annotations"]["config.linkerd.io/default-inbound-policy"] == \
            "all-authenticated"
        deny = policies[(namespace, "default-deny")]
        assert deny["policyTypes"] == ["Ingress", "Egress"]
        assert "ingress" not in deny and "egress" not in deny


def test_quotas_cap_gpus_and_mig_slices_per_namespace(stacks, environments):
    stack = stacks["prod-platform"]
    quotas = {manifest_of("kubernetes_resource_quota_v1", q, stack)["metadata"]["namespace"]: q["spec"]["hard"]
              for q in resources(stack, "kubernetes_resource_quota_v1").values()}
    for namespace, quota in environments["prod"].platform.namespace_quotas.items():
        assert quotas[namespace]["requests.nvidia.com/gpu"] == str(quota.gpus)
        for profile, count in quota.mig_slices.items():
            assert quotas[namespace][f"requests.{gpu_sharing.mig_resource(profile)}"] == str(count)


def test_controllers_get_their_own_pod_identity_roles(stacks):
    stack = stacks["prod-platform"]
    bound = {(a["namespace"], a["service_account"]) for a in
             resources(stack, "aws_eks_pod_identity_association").values()}
    assert bound == {("kube-system", "aws-load-balancer-controller"), ("kube-system", "cluster-autoscaler"),
                     ("observability", "opentelemetry-collector")}
    scaler = next(json.loads(p["policy"]) for p in resources(stack, "aws_iam_role_policy").values()
                  if "cluster-autoscaler" in p["//"]["metadata"]["path"])
    [scale] = [s for s in scaler["Statement"] if s["Sid"] == "ScaleOnlyThisClustersGroups"]
    assert scale["Condition"] == {"StringEquals": {
        "aws:ResourceTag/k8s.io/cluster-autoscaler/mlops-prod": "owned"}}
