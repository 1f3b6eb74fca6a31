"""The <env>-workloads stacks: MLflow, training queues and runtimes, inference servers and agent runtimes, each on
the right pool with the right GPU request; the synth refuses workloads that cannot be scheduled."""

import json

import kubernetes_validate
import pytest
import yaml

from platform_config.images import inference_image
from platform_config.scheduling import check_schedulable, demands_from_manifests, demands_from_training_queues
from platform_config.workloads import engine_catalogue
from tests_support import ENVIRONMENT_NAMES, application_manifests, resources

ENVIRONMENTS = ENVIRONMENT_NAMES
BUILT_IN_GROUPS = ("", "apps", "policy", "autoscaling", "networking.k8s.io")


def releases(stack):
    return {r["name"]: r for r in resources(stack, "helm_release").values()}


def values(stack, release):
    return yaml.safe_load(releases(stack)[release]["values"][0])


def manifests(stack):
    """Every manifest of the raw releases, and of the Argo CD Applications among them (default image tags)."""
    found = []
    for release in releases(stack).values():
        if release["chart"] == "raw":
            for manifest in yaml.safe_load(release["values"][0])["resources"]:
                found.append(manifest)
                if manifest["kind"] == "Application":
                    found += application_manifests(manifest)
    return found


def by_kind(stack, kind):
    return {(m["metadata"].get("namespace"), m["metadata"]["name"]): m for m in manifests(stack) if m["kind"] == kind}


def pod_spec(stack, namespace, name):
    return by_kind(stack, "Deployment")[(namespace, name)]["spec"]["template"]["spec"]


def test_mlflow_uses_the_rds_backend_the_artifacts_bucket_and_its_pod_identity(stacks):
    mlflow = values(stacks["prod-workloads"], "mlflow")
    remote = "${data.terraform_remote_state.cross-stack-reference-input-prod-data.outputs."
    assert mlflow["backendStore"]["postgres"]["host"].startswith(remote)
    assert mlflow["backendStore"]["postgres"]["host"].endswith("address}")
    assert mlflow["backendStore"]["existingDatabaseSecret"]["name"] == "mlflow-database"
    assert mlflow["artifactRoot"]["s3"]["bucket"].startswith(remote)
    assert "bucket-artifacts" in mlflow["artifactRoot"]["s3"]["bucket"]
    assert mlflow["serviceAccount"]["name"] == "mlflow"
    assert mlflow["auth"]["enabled"] is True
    assert mlflow["service"]["type"] == "ClusterIP"


def test_the_mlflow_database_secret_comes_from_the_secret_rds_keeps(stacks):
    secret = by_kind(stacks["prod-workloads"], "ExternalSecret")[("mlops", "mlflow-database")]
    [key] = {d["remoteRef"]["key"] for d in secret["spec"]["data"]}
    assert "master_user_secret" in key and key.startswith("${data.terraform_remote_state.")
    assert [d["remoteRef"]["property"] for d in secret["spec"]["data"]] == ["username", "password"]
    assert set(secret["spec"]["target"]["template"]["data"]) == {"username", "password", "password-uri-encoded"}


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_production_inference_runs_on_the_mig_pool_requesting_the_slices_of_the_environment(
        stacks, environments, env_name):
    env = environments[env_name]
    stack = stacks[f"{env_name}-workloads"]
    deployments = by_kind(stack, "Deployment")
    for kind, engine in env.workloads.inference.deployments.items():
        if not engine.enabled:
            assert ("inference", kind) not in deployments
            continue
        pod = pod_spec(stack, "inference", kind)
        assert pod["containers"][0]["image"].rsplit(":", 1)[0].endswith(f"/{inference_image(engine.engine)}")
        assert pod["nodeSelector"] == {"mlops-platform/pool": engine.placement.pool}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        [server] = pod["containers"]
        assert server["resources"]["limits"][engine.placement.gpu.resource] == str(engine.placement.gpu.count)
        assert server["readinessProbe"]["httpGet"]["port"] == "http"
        assert server["livenessProbe"] and server["startupProbe"]
        assert server["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["serviceAccountName"] == "inference-server"
        hpa = by_kind(stack, "HorizontalPodAutoscaler")[("inference", kind)]["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (engine.scaling.replicas, engine.scaling.most)
        assert ("inference", kind) in by_kind(stack, "PodDisruptionBudget")


def test_tgi_stays_an_engine_of_the_catalogue():
    """TGI is in maintenance upstream but stays supported (the catalogue pins its image); what an enabled or a
    disabled engine synthesizes is the parametrized test above, for every environment."""
    assert "tgi" in engine_catalogue()


def test_batch_inference_runs_on_the_a100_time_slicing_pool(stacks):
    pod = pod_spec(stacks["prod-workloads"], "inference", "batch-vllm")
    assert pod["nodeSelector"] == {"mlops-platform/pool": "a100-timeslice"}
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_models_come_from_the_registry_bucket_or_the_efs_models_access_point(stacks):
    stack = stacks["prod-workloads"]
    vllm = pod_spec(stack, "inference", "vllm")
    [fetch] = vllm["initContainers"]
    assert fetch["args"][:2] == ["s3", "sync"] and "bucket-model-registry" in fetch["args"][3]
    triton = pod_spec(stack, "inference", "triton")
    assert {"name": "models", "persistentVolumeClaim": {"claimName": "efs-models", "readOnly": True}} in \
        triton["volumes"]
    volume = by_kind(stack, "PersistentVolume")[(None, "efs-models-inference")]
    assert "::" in volume["spec"]["csi"]["volumeHandle"]


def test_http_goes_through_an_internal_alb_and_grpc_through_an_internal_nlb_by_default(stacks):
    stack = stacks["prod-workloads"]
    ingress = by_kind(stack, "Ingress")[("inference", "inference")]
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"] == "ip"
    routes = {p["path"]: p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert routes == {"/v1": "vllm", "/v2": "triton"}
    nlb = by_kind(stack, "Service")[("inference", "triton-grpc")]
    assert nlb["spec"]["type"] == "LoadBalancer"
    assert nlb["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"
    assert nlb["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"] == "ip"


def test_load_balancers_reach_the_meshed_servers_only_on_their_serving_ports(stacks):
    stack = stacks["prod-workloads"]
    servers = by_kind(stack, "Server")
    assert {name for _, name in servers} == {"vllm-http", "triton-http", "triton-grpc"}


def test_agents_call_the_in_cluster_llm_over_the_mesh_with_their_secrets_from_secrets_manager(stacks, environments):
    stack = stacks["prod-workloads"]
    settings = by_kind(stack, "ConfigMap")[("agentic", "agent-settings")]["data"]
    assert settings["OPENAI_BASE_URL"] == "http://vllm.inference.svc.cluster.local:8000/v1"
    assert settings["WANDB_BASE_URL"] == environments["prod"].workloads.wandb.base_url
    for name in ("crewai", "langgraph", "autogen"):
        pod = pod_spec(stack, "agentic", name)
        [runtime] = pod["containers"]
        assert runtime["image"].startswith("333333333333.dkr.ecr.us-east-1.amazonaws.com/agents/")
        assert {"secretRef": {"name": "llm-api-keys", "optional": True}} in runtime["envFrom"]
        assert pod["serviceAccountName"] == "agent-runtime"


def test_critical_agents_run_on_a_mig_slice_and_the_others_on_the_cpu_pool(stacks):
    stack = stacks["prod-workloads"]
    critical = pod_spec(stack, "agentic", "crewai")
    assert critical["nodeSelector"] == {"mlops-platform/pool": "a100-mig"}
    assert critical["containers"][0]["resources"]["limits"]["nvidia.com/mig-1g.10gb"] == "1"
    assert pod_spec(stack, "agentic", "langgraph")["nodeSelector"] == {"mlops-platform/pool": "cpu"}
    assert pod_spec(stacks["dev-workloads"], "agentic", "crewai")["nodeSelector"] == {"mlops-platform/pool": "cpu"}


def test_training_teams_share_gpus_through_kueue_queues_in_one_cohort(stacks, environments):
    stack = stacks["prod-workloads"]
    teams = environments["prod"].workloads.training.teams
    queues = by_kind(stack, "ClusterQueue")
    assert {name for _, name in queues} == set(teams)
    for team, queue in teams.items():
        spec = queues[(None, team)]["spec"]
        assert spec["cohortName"] == "gpu-training"
        quotas = {f["name"]: {r["name"]: r["nominalQuota"] for r in f["resources"]}
                  for f in spec["resourceGroups"][0]["flavors"]}
        assert {pool: q["nvidia.com/gpu"] for pool, q in quotas.items()} == {
            pool: str(units) for pool, units in queue.gpus.items()}
        assert by_kind(stack, "LocalQueue")[("training", team)]["spec"] == {"clusterQueue": team}
    flavors = by_kind(stack, "ResourceFlavor")
    assert flavors[(None, "h100-timeslice")]["spec"]["nodeLabels"] == {"mlops-platform/pool": "h100-timeslice"}


def test_pytorch_and_tensorflow_runtimes_are_installed_with_the_training_operator(stacks):
    stack = stacks["prod-workloads"]
    runtimes = by_kind(stack, "ClusterTrainingRuntime")
    assert {name for _, name in runtimes} == {"platform-torch-distributed", "platform-tensorflow-distributed"}
    assert runtimes[(None, "platform-torch-distributed")]["spec"]["mlPolicy"]["torch"] == {}
    assert {r["name"] for r in releases(stack).values()} >= {"kubeflow-trainer", "kueue"}


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_gpu_workload_synthesized_fits_a_pool_that_can_hold_it(stacks, environments, env_name):
    env = environments[env_name]
    demands = demands_from_manifests(manifests(stacks[f"{env_name}-workloads"]))
    assert len(demands) >= 3
    check_schedulable(env, [*demands, *demands_from_training_queues(env)])


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_built_in_workload_object_is_valid_for_the_clusters_version(stacks, environments, env_name):
    version = environments[env_name].cluster.kubernetes_version
    checked = 0
    for manifest in manifests(stacks[f"{env_name}-workloads"]):
        group = manifest["apiVersion"].rpartition("/")[0]
        if group in BUILT_IN_GROUPS:
            kubernetes_validate.validate(json.loads(json.dumps(manifest)), version, strict=True)
            checked += 1
    assert checked >= 20


def test_a_tuning_service_shares_optuna_studies_between_trial_jobs_and_its_dashboard(stacks):
    stack = stacks["prod-workloads"]
    claim = by_kind(stack, "PersistentVolumeClaim")[("training", "optuna-studies")]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["storageClassName"] == "efs-dynamic"
    dashboard = pod_spec(stack, "training", "optuna-dashboard")
    assert dashboard["containers"][0]["args"] == ["/optuna/journal.log"]
    assert dashboard["nodeSelector"] == {"mlops-platform/pool": "cpu"}
    for runtime in by_kind(stack, "ClusterTrainingRuntime").values():
        pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
        assert {"name": "studies", "persistentVolumeClaim": {"claimName": "optuna-studies"}} in pod["volumes"]
    settings = by_kind(stack, "ConfigMap")[("training", "training-settings")]["data"]
    assert settings["OPTUNA_JOURNAL"] == "/optuna/journal.log"


def _service_accounts_in(values, found=None):
    """Every ``serviceAccount: {name: ...}`` (at any depth) of a release's values, and raw ServiceAccounts."""
    found = set() if found is None else found
    if isinstance(values, dict):
        account = values.get("serviceAccount")
        if isinstance(account, dict) and isinstance(account.get("name"), str):
            found.add(account["name"])
        if values.get("kind") == "ServiceAccount":
            found.add(values["metadata"]["name"])
        for child in values.values():
            _service_accounts_in(child, found)
    elif isinstance(values, list):
        for child in values:
            _service_accounts_in(child, found)
    return found


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_pod_identity_association_names_a_service_account_the_platform_creates(stacks, env_name):
    created = set()
    for layer in ("platform", "workloads"):
        for release in releases(stacks[f"{env_name}-{layer}"]).values():
            values = yaml.safe_load(release["values"][0])
            for name in _service_accounts_in(values):
                created.add((release["namespace"], name))
            # Argo CD creates what an Application deploys, in the namespaces its manifests name.
            listed = values.get("resources") if release["chart"] == "raw" else []
            for application in (r for r in listed if r["kind"] == "Application"):
                for manifest in application_manifests(application):
                    if manifest["kind"] == "ServiceAccount":
                        created.add((manifest["metadata"]["namespace"], manifest["metadata"]["name"]))
    associations = [(a["namespace"], a["service_account"]) for layer in ("data", "platform")
                    for a in resources(stacks[f"{env_name}-{layer}"], "aws_eks_pod_identity_association").values()]
    assert len(associations) >= 9
    assert sorted(set(associations) - created) == []
