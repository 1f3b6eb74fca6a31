"""The ``<env>-platform`` layer: what runs inside the cluster.

Its kubernetes and helm providers are configured from the cluster layer's outputs (endpoint and CA through
cross-stack references, credentials through ``aws eks get-token``), never from resources of this layer: a provider
configured from a cluster created in the same apply fails on plan. The deploying identity must be one of the
environment's ``admin_principals``.
"""

from __future__ import annotations

from typing import Any

from constructs import Construct

from modules.cluster.stack import ClusterStack
from modules.common.cluster_providers import configure_cluster_providers
from modules.common.helm_release import PlatformRelease
from modules.common.kubernetes_objects import KubernetesObjects
from modules.common.layer_stack import LayerStack
from modules.common.workload_identity import PodIdentityRole
from modules.data.stack import DataStack
from modules.network.stack import NetworkStack
from platform_config import argocd_settings, cluster_objects, external_secrets, grafana, linkerd_identity
from platform_config.data_layer import controller_identities, controller_policy, workload_identities
from platform_config.gpu_sharing import gpu_operator_values
from platform_config.images import ecr_registry
from platform_config.models import Environment

PROMETHEUS_RELEASE = "kube-prometheus-stack"


class PlatformStack(LayerStack):
    """The in-cluster platform: namespaces and their guardrails, storage classes, controllers, the GPU operator,
    the mesh, monitoring, logging, tracing, secrets sync and GitOps. Exposes ``releases`` by name."""

    def __init__(self, scope: Construct, *, environment: Environment, network: NetworkStack,
                 cluster: ClusterStack, data: DataStack) -> None:
        super().__init__(scope, environment=environment, layer="platform")
        env = environment
        eks = cluster.cluster.eks
        configure_cluster_providers(self, environment=env, endpoint=eks.endpoint,
                                    ca_data=eks.certificate_authority.get(0).data)

        self.controller_roles = {
            name: PodIdentityRole(
                self, f"identity-{name}", cluster_name=eks.name, name=name, namespace=identity.namespace,
                service_account=identity.service_account,
                statements=controller_policy(identity.policy, cluster_name=env.cluster_name, region=env.region,
                                             account_id=env.account_id))
            for name, identity in controller_identities().items()
        }

        namespaces = KubernetesObjects(self, "namespaces", manifests=cluster_objects.namespaces())
        KubernetesObjects(self, "namespace-guardrails", manifests=cluster_objects.namespace_guardrails(env),
                          namespaces=namespaces.namespaces)
        storage = KubernetesObjects(self, "storage-classes", manifests=cluster_objects.storage_classes(
            volume_key_arn=cluster.cluster.key.arn, file_system_id=data.file_system.file_system.id,
            retain=env.protection.prevent_destroy))

        self.releases: dict[str, PlatformRelease] = {}
        ready = namespaces.resources
        # CRDs and the CNI plugin first: every later chart may create ServiceMonitors, and meshed pods need the CNI.
        self._release("prometheus-operator-crds", env, after=ready)
        self._release("linkerd-crds", env, after=ready)
        self._release("linkerd2-cni", env, after=ready)
        crds = [self.releases[name].release for name in ("prometheus-operator-crds", "linkerd-crds")]
        self._release("metrics-server", env, after=crds)
        # Secrets sync before anything that mounts a synced Secret (Grafana, Alertmanager).
        self._release("external-secrets", env, after=crds, computed=self._service_account(
            workload_identities()["external-secrets"].service_account))
        self._release("platform-resources", env, after=[self.releases["external-secrets"].release],
                      computed={"resources": [
                          *external_secrets.namespace_secret_stores(env.region, data.secret_readers.role_arns),
                          *external_secrets.external_secrets(env.name)]})
        storage_class = {"volumeClaimTemplate": {"spec": {"storageClassName": cluster_objects.DEFAULT_STORAGE_CLASS}}}
        log_group = data.log_groups["containers"]
        self._release(PROMETHEUS_RELEASE, env, after=[self.releases["platform-resources"].release,
                                                      *storage.resources],
                      computed={"prometheus": {"prometheusSpec": {"storageSpec": storage_class}},
                                "alertmanager": {"alertmanagerSpec": {"storage": storage_class}},
                                **grafana.grafana_values(
                                    region=env.region, log_group_name=log_group.name, log_group_arn=log_group.arn,
                                    service_account=workload_identities()["grafana"].service_account)})
        self._release("aws-load-balancer-controller", env, after=crds, computed={
            "clusterName": env.cluster_name, "region": env.region, "vpcId": network.network.vpc.id,
            **self._service_account(controller_identities()["aws-load-balancer-controller"].service_account)})
        self._release("cluster-autoscaler", env, after=crds, computed={
            "autoDiscovery": {"clusterName": env.cluster_name}, "awsRegion": env.region,
            "rbac": {"serviceAccount": {"create": True,
                                        "name": controller_identities()["cluster-autoscaler"].service_account}}})
        # Linkerd's identity without a private key in Terraform: cert-manager issues the issuer from the trust
        # anchor External Secrets syncs (platform-resources), trust-manager distributes the anchor's certificate.
        self._release("cert-manager", env, after=crds)
        self._release("trust-manager", env, after=[self.releases["cert-manager"].release])
        self._release("linkerd-identity", env, chart="platform-resources",
                      namespace=linkerd_identity.control_plane_namespace(),
                      after=[self.releases[name].release
                             for name in ("cert-manager", "trust-manager", "platform-resources")],
                      computed={"resources": linkerd_identity.identity_manifests()})
        self._release("linkerd-control-plane", env,
                      after=[*(self.releases[name].release for name in ("linkerd2-cni", "linkerd-identity")), *crds],
                      computed=linkerd_identity.control_plane_values())
        self._release("gpu-operator", env, after=[self.releases[PROMETHEUS_RELEASE].release],
                      computed=gpu_operator_values(env, prometheus_release=PROMETHEUS_RELEASE), timeout=900)
        self._release("fluent-bit", env, after=crds, computed={
            "cloudWatchLogs": {"region": env.region, "logGroupName": log_group.name}})
        self._release("opentelemetry-collector", env, after=crds,
                      computed={"config": {"exporters": {"awsxray": {"region": env.region}}}})
        self._release("argo-cd", env, after=[self.releases["platform-resources"].release],
                      computed=argocd_settings.argo_cd_values(env))
        self._release("argocd-apps", env, after=[self.releases["argo-cd"].release],
                      computed=argocd_settings.argocd_apps_values(env))

    @staticmethod
    def _service_account(name: str) -> dict[str, Any]:
        return {"serviceAccount": {"create": True, "name": name}}

    def _release(self, name: str, env: Environment, *, after: list, computed: dict[str, Any] | None = None,
                 chart: str | None = None, namespace: str | None = None, timeout: int | None = None) -> None:
        self.releases[name] = PlatformRelease(
            self, f"release-{name}", release=name, environment_name=env.name, chart=chart, namespace=namespace,
            image_registry=ecr_registry(env.account_id, env.region),
            computed_values=computed, depends_on=after, **({"timeout": timeout} if timeout else {}))
