"""The kubernetes and helm providers of an in-cluster layer, configured from the cluster layer's outputs.

A provider configured from a cluster created in the same Terraform run fails on plan ("connection refused"), so
the in-cluster layers take the endpoint and CA through cross-stack references and get credentials at run time
with ``aws eks get-token`` (the applying identity must be an access entry of the cluster).
"""

from __future__ import annotations

from cdktf import Fn
from cdktf_cdktf_provider_helm.provider import HelmProvider, HelmProviderKubernetes, HelmProviderKubernetesExec
from cdktf_cdktf_provider_kubernetes.provider import KubernetesProvider, KubernetesProviderExec
from constructs import Construct

from platform_config.models import Environment

EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"


def configure_cluster_providers(scope: Construct, *, environment: Environment, endpoint: str, ca_data: str) -> None:
    ca = Fn.base64decode(ca_data)
    args = ["eks", "get-token", "--cluster-name", environment.cluster_name, "--region", environment.region]
    KubernetesProvider(scope, "kubernetes", host=endpoint, cluster_ca_certificate=ca,
                       exec=[KubernetesProviderExec(api_version=EXEC_API_VERSION, command="aws", args=args)])
    HelmProvider(scope, "helm", kubernetes=HelmProviderKubernetes(
        host=endpoint, cluster_ca_certificate=ca,
        exec=HelmProviderKubernetesExec(api_version=EXEC_API_VERSION, command="aws", args=args)))
