"""The workloads' Kubernetes manifests: inference servers, agent runtimes, training queues and runtimes.

Pure functions of the environment and a few infrastructure names (``InfrastructureRefs``; Terraform references
when synthesized). Every pod template is placed by our pool label and, on GPU pools, tolerates the GPU taint and
requests the GPU resource of its placement, so the scheduling check can prove it fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from platform_config import inference_edge
from platform_config.data_layer import EFS_MOUNT_OPTIONS, workload_identities
from platform_config.external_secrets import store_ref
from platform_config.images import ecr_registry, inference_image, mirrored_image, platform_image_reference
from platform_config.inference_engines import engine_catalogue
from platform_config.models import AgentRuntime, Environment, InferenceEngine, ModelDeployment, Placement
from platform_config.node_labels import CPU_POOL, GPU_TAINT_EFFECT_KUBERNETES, GPU_TAINT_KEY, POOL_LABEL

PART_OF = "mlops-platform"
MODELS_MOUNT = "/models"
MLFLOW_URL = "http://mlflow.mlops.svc.cluster.local"
AGENT_PORT = 8080
#: Scale out when the pods' CPU passes this share of their request. GPU servers are also CPU-bound on tokenizing
#: and HTTP; a queue-depth metric needs a metrics adapter the platform does not install yet.
CPU_TARGET_PERCENT = 70

Manifest = dict[str, Any]


@dataclass(frozen=True)
class InfrastructureRefs:
    """Names from other layers the manifests mention (Terraform references when synthesized)."""

    model_bucket: str
    file_system_id: str
    models_access_point_id: str
    database_secret_arn: str


#: What the manifests mention from other layers changes neither where their pods go nor what they request:
#: placeholders stand in for it when the checks run before the synth.
PLACEHOLDER_REFS = InfrastructureRefs(model_bucket="(bucket)", file_system_id="(file system)",
                                      models_access_point_id="(access point)", database_secret_arn="(secret)")


def _labels(name: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": PART_OF}


def _restricted_container() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def _pod_security(user: int) -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": user, "runAsGroup": user, "fsGroup": user,
            "seccompProfile": {"type": "RuntimeDefault"}}


def placement_of(placement: Placement | None) -> dict[str, Any]:
    """Node selector and tolerations of a pod: our pool label, and the GPU toleration on GPU pools."""
    if placement is None:
        return {"nodeSelector": {POOL_LABEL: CPU_POOL}}
    return {"nodeSelector": {POOL_LABEL: placement.pool},
            "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": GPU_TAINT_EFFECT_KUBERNETES}]}


def _gpu(placement: Placement | None) -> dict[str, str]:
    return {} if placement is None else {placement.gpu.resource: str(placement.gpu.count)}


def _scaling(name: str, namespace: str, component: str, replicas: int, most: int) -> list[Manifest]:
    """A disruption budget (never more than one pod down by eviction) and a CPU autoscaler."""
    selector = {"matchLabels": {"app.kubernetes.io/name": name}}
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
              "metadata": {"name": name, "namespace": namespace, "labels": _labels(name, component)},
              "spec": {"maxUnavailable": 1, "selector": selector}}
    autoscaler = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                  "metadata": {"name": name, "namespace": namespace, "labels": _labels(name, component)},
                  "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                           "minReplicas": replicas, "maxReplicas": most,
                           "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                               "type": "Utilization", "averageUtilization": CPU_TARGET_PERCENT}}}]}}
    return [budget, autoscaler]


def _service_account(name: str, namespace: str) -> Manifest:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}


# --- inference ---------------------------------------------------------------------------------------------------

def _model_volume(engine: InferenceEngine, refs: InfrastructureRefs, fetcher_image: str, user: int):
    """Volumes, mounts and init containers that put the model under /models/<name>."""
    if engine.model.store == "efs":
        volumes = [{"name": "models", "persistentVolumeClaim": {"claimName": "efs-models", "readOnly": True}}]
        mounts = [{"name": "models", "mountPath": MODELS_MOUNT, "readOnly": True}]
        return volumes, mounts, [], f"{MODELS_MOUNT}/{engine.model.path.rstrip('/')}"
    model_dir = f"{MODELS_MOUNT}/{engine.model.name}"
    volumes = [{"name": "models", "emptyDir": {}}]
    mounts = [{"name": "models", "mountPath": MODELS_MOUNT, "readOnly": True}]
    fetch = {
        "name": "fetch-model", "image": fetcher_image,
        "args": ["s3", "sync", "--only-show-errors", f"s3://{refs.model_bucket}/{engine.model.path.rstrip('/')}/",
                 model_dir],
        "env": [{"name": "HOME", "value": "/tmp"}],
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": _restricted_container() | {"runAsUser": user},
        "volumeMounts": [{"name": "models", "mountPath": MODELS_MOUNT}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    return volumes, mounts, [fetch], model_dir


def inference_server(name: str, kind: str, engine: InferenceEngine, refs: InfrastructureRefs, *, registry: str,
                     namespace: str = "inference") -> list[Manifest]:
    """Deployment, Service, disruption budget and autoscaler of one inference server, running the engine's image
    built here (``images/inference/<kind>``) from the environment's ECR ``registry``."""
    spec = engine_catalogue()[kind]
    user = spec["run_as_user"]
    fetcher = mirrored_image(engine_catalogue()["model_fetcher"]["repository"], registry=registry)
    volumes, mounts, init, model_dir = _model_volume(engine, refs, fetcher, user)
    args = [a.format(model_dir=model_dir, served_name=engine.model.name) for a in spec["args"]]
    ports = [{"name": port_name, "containerPort": number, "protocol": "TCP"}
             for port_name, number in spec["ports"].items()]
    env = [{"name": k, "value": v} for k, v in {**spec["env"], **spec["writable"]}.items()]
    gpu = _gpu(engine.placement)
    container: dict[str, Any] = {
        "name": "server", "image": platform_image_reference(registry, inference_image(kind), engine.image_tag),
        "args": args, "ports": ports, "env": env,
        "resources": {"requests": {"cpu": "4", "memory": "32Gi", **gpu}, "limits": {"memory": "64Gi", **gpu}},
        # Loading a large model takes minutes: the startup probe gives it up to 30 minutes before liveness counts.
        "startupProbe": {"httpGet": {"path": spec["readiness_path"], "port": "http"}, "periodSeconds": 10,
                         "failureThreshold": 180},
        "readinessProbe": {"httpGet": {"path": spec["readiness_path"], "port": "http"}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": spec["liveness_path"], "port": "http"}, "periodSeconds": 20,
                          "failureThreshold": 3},
        "securityContext": _restricted_container(),
        "volumeMounts": [*mounts, {"name": "tmp", "mountPath": "/tmp"},
                         {"name": "shm", "mountPath": "/dev/shm"}],
    }
    if "command" in spec:
        container["command"] = spec["command"]
    labels = _labels(name, "inference")
    service_account = workload_identities()["inference"].service_account
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": engine.scaling.replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            # No surge: a rollout never needs a GPU slice beyond the pool's planned capacity.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": labels, "annotations": {
                    "prometheus.io/scrape": "true", "prometheus.io/path": spec["metrics"]["path"],
                    "prometheus.io/port": str(spec["ports"][spec["metrics"]["port"]])}},
                "spec": {
                    "serviceAccountName": service_account, "enableServiceLinks": False,
                    "securityContext": _pod_security(user), **placement_of(engine.placement),
                    "initContainers": init, "containers": [container],
                    "volumes": [*volumes, {"name": "tmp", "emptyDir": {}},
                                {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}],
                },
            },
        },
    }
    if not init:
        del deployment["spec"]["template"]["spec"]["initContainers"]
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": {
                   "alb.ingress.kubernetes.io/healthcheck-path": spec["readiness_path"]}},
               "spec": {"type": "ClusterIP", "selector": {"app.kubernetes.io/name": name},
                        "ports": [{"name": p["name"], "port": p["containerPort"], "targetPort": p["name"],
                                   "protocol": "TCP"} for p in ports]}}
    return [deployment, service, *_scaling(name, namespace, "inference", engine.scaling.replicas,
                                           engine.scaling.most)]


def _ingress(environment: Environment, served: dict[str, ModelDeployment]) -> Manifest:
    """One ALB for the HTTP APIs, routed by host and path: each deployment gets its engine's paths (OpenAI API
    /v1 of vLLM, KServe v2 /v2 of Triton, ...), on its own host when it has one. Placement, sources and listener
    are the inference edge's (``inference_edge.alb_annotations``)."""
    annotations = {"alb.ingress.kubernetes.io/target-type": "ip",
                   "alb.ingress.kubernetes.io/load-balancer-attributes": "idle_timeout.timeout_seconds=300",
                   **inference_edge.alb_annotations(environment)}
    rules: dict[str | None, list[dict[str, Any]]] = {}
    for name, deployment in served.items():
        rules.setdefault(deployment.route.host, []).extend(
            {"path": path, "pathType": "Prefix", "backend": {"service": {"name": name, "port": {"name": "http"}}}}
            for path in engine_catalogue()[deployment.engine]["ingress_paths"])
    # Host rules first: the ALB evaluates rules in order, and the rule without a host matches every host.
    ordered = sorted(rules.items(), key=lambda item: (item[0] is None, item[0] or ""))
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "inference", "namespace": "inference", "annotations": annotations},
            "spec": {"ingressClassName": "alb",
                     "rules": [{**({"host": host} if host else {}), "http": {"paths": paths}}
                               for host, paths in ordered]}}


def _grpc_load_balancer(environment: Environment, name: str) -> Manifest:
    """A Triton deployment's gRPC API through an NLB with IP targets (placement, sources and listener from
    ``inference_edge.grpc_listener``)."""
    listener = inference_edge.grpc_listener(environment)
    prefix = "service.beta.kubernetes.io/aws-load-balancer"
    annotations = {f"{prefix}-type": "external", f"{prefix}-nlb-target-type": "ip",
                   f"{prefix}-healthcheck-protocol": "http", f"{prefix}-healthcheck-port": "8000",
                   f"{prefix}-healthcheck-path": "/v2/health/ready", **listener.annotations}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"{name}-grpc", "namespace": "inference", "annotations": annotations},
            "spec": {"type": "LoadBalancer", "selector": {"app.kubernetes.io/name": name},
                     "loadBalancerSourceRanges": listener.source_ranges,
                     "ports": [{"name": "grpc", "port": listener.port, "targetPort": "grpc", "protocol": "TCP"}]}}


def _efs_models_volume(refs: InfrastructureRefs) -> list[Manifest]:
    """The EFS ``models`` access point as a read-only volume of the inference namespace."""
    return [
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "efs-models-inference"},
         "spec": {"capacity": {"storage": "1Ti"}, "accessModes": ["ReadOnlyMany"],
                  "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "", "volumeMode": "Filesystem",
                  "mountOptions": list(EFS_MOUNT_OPTIONS),
                  "claimRef": {"namespace": "inference", "name": "efs-models"},
                  "csi": {"driver": "efs.csi.aws.com",
                          "volumeHandle": f"{refs.file_system_id}::{refs.models_access_point_id}"}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": "efs-models", "namespace": "inference"},
         "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "", "volumeName": "efs-models-inference",
                  "resources": {"requests": {"storage": "1Ti"}}}},
    ]


def inference_manifests(environment: Environment, refs: InfrastructureRefs) -> list[Manifest]:
    inference = environment.workloads.inference
    served = {name: deployment for name, deployment in inference.deployments.items() if deployment.enabled}
    manifests: list[Manifest] = [_service_account(workload_identities()["inference"].service_account, "inference"),
                                 *_efs_models_volume(refs)]
    registry = ecr_registry(environment.account_id, environment.region)
    for name, deployment in served.items():
        manifests += inference_server(name, deployment.engine, deployment, refs, registry=registry)
    if inference.batch and inference.batch.enabled:
        manifests += inference_server("batch-vllm", "vllm", inference.batch, refs, registry=registry)
    manifests.append(_ingress(environment, served))
    for name, deployment in served.items():
        if "grpc" in engine_catalogue()[deployment.engine]["ports"]:
            manifests.append(_grpc_load_balancer(environment, name))
    manifests += inference_edge.mesh_authorizations(environment, served)
    return manifests


# --- agents ------------------------------------------------------------------------------------------------------

def llm_base_url(environment: Environment) -> str:
    """The OpenAI-compatible endpoint agents call: the in-cluster inference service, over the mesh."""
    name = environment.workloads.agents.llm_deployment
    spec = engine_catalogue()[environment.workloads.inference.deployments[name].engine]
    if not spec["openai_path"]:
        raise ValueError(f"workloads.agents.llm_deployment {name} has no OpenAI-compatible API; use vllm or tgi")
    return f"http://{name}.inference.svc.cluster.local:{spec['ports']['http']}{spec['openai_path']}"


def agent_runtime(name: str, runtime: AgentRuntime, environment: Environment) -> list[Manifest]:
    placement = environment.workloads.agents.critical_placement if runtime.critical else None
    registry = ecr_registry(environment.account_id, environment.region)
    labels = _labels(name, "agent")
    gpu = _gpu(placement)
    container = {
        "name": "runtime", "image": platform_image_reference(registry, runtime.image_repository, runtime.image_tag),
        "ports": [{"name": "http", "containerPort": AGENT_PORT, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": "agent-settings"}},
                    {"secretRef": {"name": "llm-api-keys", "optional": True}}],
        "env": [{"name": "WANDB_API_KEY", "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "api-key",
                                                                           "optional": True}}}],
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi", **gpu}, "limits": {"memory": "2Gi", **gpu}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 20},
        "securityContext": _restricted_container(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "agentic", "labels": labels},
        "spec": {"replicas": runtime.scaling.replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "serviceAccountName": workload_identities()["agents"].service_account,
                     "securityContext": _pod_security(1000), **placement_of(placement),
                     "containers": [container], "volumes": [{"name": "tmp", "emptyDir": {}}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "agentic",
                                                                   "labels": labels},
               "spec": {"selector": {"app.kubernetes.io/name": name},
                        "ports": [{"name": "http", "port": AGENT_PORT, "targetPort": "http", "protocol": "TCP"}]}}
    return [deployment, service, *_scaling(name, "agentic", "agent", runtime.scaling.replicas, runtime.scaling.most)]


def agent_manifests(environment: Environment) -> list[Manifest]:
    agents = environment.workloads.agents
    settings = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "agent-settings", "namespace": "agentic"},
                "data": {"OPENAI_BASE_URL": llm_base_url(environment), "OPENAI_API_KEY": "in-cluster",
                         "MLFLOW_TRACKING_URI": MLFLOW_URL, "WANDB_BASE_URL": environment.workloads.wandb.base_url}}
    manifests = [_service_account(workload_identities()["agents"].service_account, "agentic"), settings]
    for name, runtime in agents.runtimes.items():
        manifests += agent_runtime(name, runtime, environment)
    return manifests


# --- training ----------------------------------------------------------------------------------------------------

KUEUE_API = "kueue.x-k8s.io/v1beta2"
TRAINER_API = "trainer.kubeflow.org/v1alpha1"
TRAINING_COHORT = "gpu-training"
#: Upstream repositories of the training runtimes (tags and digests: upstream_images.yaml, image_lock.yaml).
TRAINING_REPOSITORIES = {"torch": "pytorch/pytorch", "tensorflow": "tensorflow/tensorflow"}
#: Hyperparameter tuning: Optuna studies in a journal file on EFS, shared by the trial jobs and the dashboard.
OPTUNA_DASHBOARD_REPOSITORY = "ghcr.io/optuna/optuna-dashboard"
OPTUNA_MOUNT = "/optuna"
OPTUNA_JOURNAL = f"{OPTUNA_MOUNT}/journal.log"
OPTUNA_CLAIM = "optuna-studies"


def training_manifests(environment: Environment) -> list[Manifest]:
    """Kueue flavors (one per time-slicing pool, carrying its placement), one ClusterQueue per team in a cohort
    (guaranteed units, idle units borrowable), a LocalQueue per team in ``training``, and the training runtimes."""
    teams = environment.workloads.training.teams
    pools = sorted({pool for team in teams.values() for pool in team.gpus})
    manifests: list[Manifest] = [_service_account(workload_identities()["training"].service_account, "training"),
                                 {"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "training-settings", "namespace": "training"},
                                  "data": {"MLFLOW_TRACKING_URI": MLFLOW_URL,
                                           "WANDB_BASE_URL": environment.workloads.wandb.base_url,
                                           "OPTUNA_JOURNAL": OPTUNA_JOURNAL}}]
    for pool in pools:
        manifests.append({"apiVersion": KUEUE_API, "kind": "ResourceFlavor", "metadata": {"name": pool},
                          "spec": {"nodeLabels": {POOL_LABEL: pool},
                                   "tolerations": placement_of(Placement.model_validate(
                                       {"pool": pool, "gpu": {"resource": "nvidia.com/gpu"}}))["tolerations"]}})
    for team, queue in teams.items():
        flavors = [{"name": pool, "resources": [
            {"name": "cpu", "nominalQuota": str(8 * units)}, {"name": "memory", "nominalQuota": f"{64 * units}Gi"},
            {"name": "nvidia.com/gpu", "nominalQuota": str(units)}]} for pool, units in sorted(queue.gpus.items())]
        manifests.append({"apiVersion": KUEUE_API, "kind": "ClusterQueue", "metadata": {"name": team},
                          "spec": {"cohortName": TRAINING_COHORT,
                                   "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "training"}},
                                   "resourceGroups": [{"coveredResources": ["cpu", "memory", "nvidia.com/gpu"],
                                                       "flavors": flavors}],
                                   "preemption": {"reclaimWithinCohort": "Any", "withinClusterQueue":
                                                  "LowerPriority"}}})
        manifests.append({"apiVersion": KUEUE_API, "kind": "LocalQueue",
                          "metadata": {"name": team, "namespace": "training"}, "spec": {"clusterQueue": team}})
    registry = ecr_registry(environment.account_id, environment.region)
    manifests += training_runtimes(environment.workloads.training.distributed_placement, registry=registry)
    manifests += tuning_service(registry=registry)
    return manifests


def tuning_service(*, registry: str) -> list[Manifest]:
    """The hyperparameter-tuning service: Optuna studies kept in a journal on EFS (file locks work over NFS 4.1),
    written by trial jobs (any runtime mounts it at /optuna) and shown by the Optuna dashboard (internal only)."""
    name = "optuna-dashboard"
    labels = _labels(name, "tuning")
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": OPTUNA_CLAIM, "namespace": "training", "labels": labels},
             "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "efs-dynamic",
                      "resources": {"requests": {"storage": "10Gi"}}}}
    container = {
        "name": "dashboard", "image": mirrored_image(OPTUNA_DASHBOARD_REPOSITORY, registry=registry),
        "args": [OPTUNA_JOURNAL],
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 30},
        "securityContext": _restricted_container(),
        "volumeMounts": [{"name": "studies", "mountPath": OPTUNA_MOUNT}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "training", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "securityContext": _pod_security(1000), **placement_of(None), "containers": [container],
                     "volumes": [{"name": "studies", "persistentVolumeClaim": {"claimName": OPTUNA_CLAIM}},
                                 {"name": "tmp", "emptyDir": {}}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "training",
                                                                   "labels": labels},
               "spec": {"selector": {"app.kubernetes.io/name": name},
                        "ports": [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]}}
    return [claim, deployment, service]


def training_runtimes(placement: Placement | None = None, *, registry: str) -> list[Manifest]:
    """PyTorch (torchrun, Trainer's torch policy) and TensorFlow (indexed workers; the job builds TF_CONFIG from
    JOB_COMPLETION_INDEX) runtimes, running as the training service account with shared memory and the tuning
    studies mounted. With a ``placement``, each training node runs on its pool with its GPUs (whole GPUs on an
    exclusive pool, so one process per GPU)."""
    def runtime(name: str, framework: str, policy: dict[str, Any], image: str) -> Manifest:
        gpu = _gpu(placement)
        pod = {"serviceAccountName": workload_identities()["training"].service_account,
               "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                                   "seccompProfile": {"type": "RuntimeDefault"}},
               "containers": [{"name": "node", "image": image,
                               "envFrom": [{"configMapRef": {"name": "training-settings"}}],
                               "env": [{"name": "WANDB_API_KEY", "valueFrom": {"secretKeyRef": {
                                   "name": "wandb", "key": "api-key", "optional": True}}}],
                               "securityContext": {"allowPrivilegeEscalation": False,
                                                   "capabilities": {"drop": ["ALL"]}},
                               "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"},
                                                {"name": "studies", "mountPath": OPTUNA_MOUNT}]}],
               "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory"}},
                           {"name": "studies", "persistentVolumeClaim": {"claimName": OPTUNA_CLAIM}}]}
        if placement is not None:
            pod |= placement_of(placement)
            pod["containers"][0]["resources"] = {"requests": dict(gpu), "limits": dict(gpu)}
        job_spec: dict[str, Any] = {"template": {"spec": pod}}
        if framework == "tensorflow":
            job_spec["completionMode"] = "Indexed"
        return {"apiVersion": TRAINER_API, "kind": "ClusterTrainingRuntime",
                "metadata": {"name": name, "labels": {"trainer.kubeflow.org/framework": framework}},
                "spec": {"mlPolicy": {"numNodes": 1, **policy},
                         "template": {"spec": {"replicatedJobs": [{
                             "name": "node",
                             "template": {"metadata": {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step":
                                                                  "trainer"}},
                                          "spec": job_spec}}]}}}}

    # The torch policy of Trainer 2.3.0 has no process count: torchrun's processes per node come from the TrainJob
    # (spec.trainer.numProcPerNode, default auto: one per GPU of the node).
    images = {framework: mirrored_image(repository, registry=registry)
              for framework, repository in TRAINING_REPOSITORIES.items()}
    return [runtime("platform-torch-distributed", "torch", {"torch": {}}, images["torch"]),
            runtime("platform-tensorflow-distributed", "tensorflow", {}, images["tensorflow"])]


# --- mlops -------------------------------------------------------------------------------------------------------

#: The Secret MLflow reads its database login from (the chart's existingDatabaseSecret and auth store).
MLFLOW_DATABASE_SECRET = "mlflow-database"
#: RDS rotates the master password (every 7 days by default) and the old one stops working: new connections fail
#: until the Secret follows and MLflow restarts (Reloader restarts it when the Secret changes). Poll often to keep
#: that short; one GetSecretValue a minute costs cents a month.
DATABASE_SECRET_REFRESH_INTERVAL = "1m"
#: The annotation by which Reloader restarts a Deployment when one of the named Secrets changes.
RELOAD_ON_SECRET_ANNOTATION = "secret.reloader.stakater.com/reload"


def mlops_manifests(environment: Environment, refs: InfrastructureRefs) -> list[Manifest]:
    """The MLflow database credentials, synced from the secret RDS keeps (and rotates), with the URI-safe password
    the MLflow chart's auth configuration needs."""
    database = {
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": MLFLOW_DATABASE_SECRET, "namespace": "mlops"},
        "spec": {"refreshInterval": DATABASE_SECRET_REFRESH_INTERVAL,
                 "secretStoreRef": store_ref(),
                 "target": {"name": MLFLOW_DATABASE_SECRET, "creationPolicy": "Owner", "template": {"data": {
                     "username": "{{ .username }}", "password": "{{ .password }}",
                     "password-uri-encoded": '{{ .password | urlquery | replace "+" "%20" | replace "%" "%%" }}'}}},
                 "data": [{"secretKey": key, "remoteRef": {"key": refs.database_secret_arn, "property": key}}
                          for key in ("username", "password")]},
    }
    return [database]

