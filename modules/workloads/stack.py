"""The ``<env>-workloads`` layer: the teams' reasons to use the platform.

MLflow, the training operator and queues, the inference servers and the agent runtimes. Before anything is
built, the scheduling check proves every GPU workload fits a pool at its largest scale (``SchedulingError``
otherwise), and the admission check proves the API server admits every container under its namespace's
LimitRange and that each namespace's quota holds its workloads at their largest (``AdmissionError``); either stops
the synth with one line per problem and leaves the previous output untouched.
"""

from __future__ import annotations

from constructs import Construct

from modules.cluster.stack import ClusterStack
from modules.common.cluster_providers import configure_cluster_providers
from modules.common.helm_release import DEFAULT_TIMEOUT, PlatformRelease
from modules.common.kubernetes_objects import KubernetesObjects
from modules.common.layer_stack import LayerStack
from modules.data.database import DATABASE_NAME, POSTGRES_PORT
from modules.data.stack import DataStack
from modules.platform.stack import PlatformStack
from platform_config import cluster_objects, gitops, wandb_server, workloads
from platform_config.catalogue import load_catalogue
from platform_config.data_layer import workload_identities
from platform_config.helm_values import values_file_setting
from platform_config.images import ecr_registry
from platform_config.models import Environment
from platform_config.resource_admission import chart_deployment, check_admission, mesh_proxy_resources
from platform_config.scheduling import (
    check_schedulable,
    demands_from_manifests,
    demands_from_training_queues,
    runs_gpu_pods,
)

#: The chart that delivers manifests (custom resources included) through Helm.
MANIFESTS_CHART = "platform-resources"
WANDB_NAMESPACE = wandb_server.NAMESPACE


class WorkloadsStack(LayerStack):
    """Exposes ``releases`` by name, ``manifests`` by group (inference, agents, training, mlops) and the Argo CD
    ``applications`` by name (the groups that run the platform's own images, delivered through GitOps)."""

    def __init__(self, scope: Construct, *, environment: Environment, cluster: ClusterStack, data: DataStack,
                 platform: PlatformStack) -> None:
        super().__init__(scope, environment=environment, layer="workloads")
        env = environment
        # CRDs, namespaces, secret sync and controllers come from the platform layer; nothing here references it.
        self.add_dependency(platform)
        eks = cluster.cluster.eks
        configure_cluster_providers(self, environment=env, endpoint=eks.endpoint,
                                    ca_data=eks.certificate_authority.get(0).data)
        refs = workloads.InfrastructureRefs(
            model_bucket=data.buckets["model-registry"].name, file_system_id=data.file_system.file_system.id,
            models_access_point_id=data.file_system.access_points["models"].id,
            database_secret_arn=data.database.master_secret_arn)
        self.manifests = {
            "inference": workloads.inference_manifests(env, refs),
            "agents": workloads.agent_manifests(env),
            "training": workloads.training_manifests(env),
            "mlops": workloads.mlops_manifests(env, refs),
        }
        check_schedulable(env, [*demands_from_manifests(self.manifests["inference"] + self.manifests["agents"]
                                                        + self.manifests["training"]),
                                *demands_from_training_queues(env)])

        self.releases: dict[str, PlatformRelease] = {}
        self._release("kubeflow-trainer")
        self._release("kueue", after=["kubeflow-trainer"])
        self._manifests("mlops-resources", "mlops")
        # Reloader first: MLflow reads the database password only at start, and RDS rotates it.
        self._release("reloader")
        self._release("mlflow", after=["mlops-resources", "reloader"], computed={
            "deploymentAnnotations": {workloads.RELOAD_ON_SECRET_ANNOTATION: workloads.MLFLOW_DATABASE_SECRET},
            "backendStore": {"postgres": self._database(data)},
            "auth": {"postgres": self._database(data)},
            "artifactRoot": {"s3": {"bucket": data.buckets["artifacts"].name}},
            "serviceAccount": {"create": True, "name": workload_identities()["mlflow"].service_account},
            "extraEnvVars": {"AWS_DEFAULT_REGION": env.region}})
        chart_pods = [chart_deployment(name, release.pin.namespace, release.values, release.pin.pods,
                                       values_file=values_file_setting(name, env.name, release.pin.pods.resources))
                      for name, release in self.releases.items() if release.pin.pods]
        check_admission(env, [*(m for group in self.manifests.values() for m in group), *chart_pods],
                        mesh_proxy=mesh_proxy_resources(platform.releases["linkerd-control-plane"].values))
        self._manifests("training-resources", "training", after=["kueue"])
        # The inference servers and the agent runtimes run the platform's own images: Argo CD deploys them, each
        # image at the tag the GitOps repository names.
        repository = env.platform.gitops
        self.applications = {name: gitops.image_application(
            name=name, namespace=namespace, manifests=self.manifests[group], account_id=env.account_id,
            region=env.region, repository_url=repository.repository_url, revision=repository.revision,
            gitops_path=repository.path) for name, (group, namespace) in gitops.IMAGE_APPLICATIONS.items()}
        self._release("image-applications", chart=MANIFESTS_CHART, namespace=gitops.ARGOCD_NAMESPACE,
                      computed={"resources": list(self.applications.values())})
        if env.workloads.wandb.self_managed:
            # The operator, then the server: its External Secrets and the WeightsAndBiases resource (MySQL, bucket
            # and license secret come from the data layer; Redis runs in the namespace).
            namespace = KubernetesObjects(self, "wandb-namespace", manifests=[cluster_objects.namespace_manifest(
                WANDB_NAMESPACE, "restricted", meshed=False)])
            KubernetesObjects(self, "wandb-network-policies", manifests=cluster_objects.network_policies(
                WANDB_NAMESPACE, cluster_objects.address_ranges(env), system=True), namespaces=namespace.namespaces)
            self.releases["wandb-operator"] = PlatformRelease(
                self, "release-wandb-operator", release="wandb-operator", environment_name=env.name,
                image_registry=ecr_registry(env.account_id, env.region),
                depends_on=namespace.resources)
            self.manifests["wandb"] = wandb_server.server_manifests(
                env.workloads.wandb.server, region=env.region, refs=data.wandb_server.refs())
            self._release("wandb-server", after=["wandb-operator"], chart=MANIFESTS_CHART, namespace=WANDB_NAMESPACE,
                          computed={"resources": self.manifests["wandb"]})

    @staticmethod
    def _database(data: DataStack) -> dict:
        return {"host": data.database.instance.address, "port": POSTGRES_PORT, "database": DATABASE_NAME}

    def _release(self, name: str, *, after: tuple[str, ...] | list[str] = (), computed: dict | None = None,
                 chart: str | None = None, namespace: str | None = None, timeout: int = DEFAULT_TIMEOUT) -> None:
        self.releases[name] = PlatformRelease(
            self, f"release-{name}", release=name, chart=chart, namespace=namespace,
            environment_name=self.environment.name, computed_values=computed,
            image_registry=ecr_registry(self.environment.account_id, self.environment.region),
            depends_on=[self.releases[a].release for a in after], timeout=timeout)

    def _manifests(self, name: str, group: str, *, after: tuple[str, ...] | list[str] = ()) -> None:
        namespace = {"agents": "agentic"}.get(group, group)
        # Pods on a GPU pool may wait for a node from zero, a MIG reboot and a large image: the release waits too.
        timeout = max(DEFAULT_TIMEOUT, load_catalogue().gpu_pod_readiness_seconds) \
            if runs_gpu_pods(self.manifests[group]) else DEFAULT_TIMEOUT
        self._release(name, after=after, chart=MANIFESTS_CHART, namespace=namespace,
                      computed={"resources": self.manifests[group]}, timeout=timeout)
