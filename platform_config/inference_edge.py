"""The inference edge: how clients outside the cluster reach the model servers, and who inside may call them.

- **Load balancers.** One ALB for the HTTP APIs, one NLB per deployment that serves gRPC, made by the AWS Load
  Balancer Controller from the annotations written here. Each is placed in the public subnets (whatever its
  scheme), admits only the client networks the environment names (the frontend security group the controller
  makes from them; never its 0.0.0.0/0 default) and, with the environment's ACM certificate, listens on TLS only.
- **Nodes.** The controller adds to the node security group (tagged as the cluster's) one rule per target port
  from its shared backend security group, the group it attaches to every load balancer it makes. The node group's
  own rules admit no CIDR, so no other address reaches a serving port.
- **The mesh.** Servers are meshed with mTLS required (the namespace's default policy). A ``Server`` per serving
  port denies everything except what an ``AuthorizationPolicy`` names:
  - the load balancers, by address: they cannot speak the mesh's mTLS, so a ``NetworkAuthentication`` admits the
    public subnets, where only the load balancers and the NAT gateways live. Never the VPC, whose private subnets
    hold every node and pod: an unmeshed pod there would reach the models in clear.
  - in-cluster clients, by identity: a ``MeshTLSAuthentication`` naming the service accounts of the workloads
    that call the deployment (the agents call ``workloads.agents.llm_deployment``).
  Kubelet probes still pass: Linkerd authorizes probe paths by itself on a ``Server`` that has no route.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from platform_config.data_layer import workload_identities
from platform_config.inference_engines import engine_catalogue
from platform_config.linkerd_identity import TRUST_DOMAIN
from platform_config.models import Environment, Exposure, ModelDeployment

Manifest = dict[str, Any]

NAMESPACE = "inference"
POLICY_API = "policy.linkerd.io"
#: TLS 1.3 and 1.2 with forward-secret ciphers only (the ELB policy AWS recommends for new listeners).
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
HTTPS_PORT = 443
HTTP_PORT = 80
#: The gRPC listener without TLS (dev and staging only): Triton's own gRPC port.
PLAIN_GRPC_PORT = 8001
#: The NetworkAuthentication of the load balancers' subnets.
LOAD_BALANCERS = "load-balancers"
#: Serving ports that get a Server, with the protocol Linkerd should expect on them.
SERVING_PORTS = {"http": "HTTP/1", "grpc": "gRPC"}


@dataclass(frozen=True)
class MeshClient:
    """A workload inside the cluster that calls a model deployment, known to the mesh by its service account."""

    namespace: str
    service_account: str

    @property
    def identity(self) -> str:
        """The client's mTLS identity, as Linkerd's identity service issues it."""
        return f"{self.service_account}.{self.namespace}.serviceaccount.identity.linkerd.{TRUST_DOMAIN}"


def load_balancer_networks(environment: Environment) -> list[str]:
    """The subnets the inference load balancers live in (the public ones): the only addresses the mesh admits
    without mTLS."""
    return [str(subnet) for subnet in environment.network.public_subnets]


def load_balancer_subnet_names(environment: Environment) -> list[str]:
    """The ``Name`` tags of those subnets, as the controller's subnet annotations take them."""
    return [environment.subnet_name("public", zone) for zone in environment.availability_zones]


def _clients(exposure: Exposure) -> list[str]:
    return [str(cidr) for cidr in exposure.clients]


def alb_annotations(environment: Environment) -> dict[str, str]:
    """The ALB's placement, sources and listener: HTTPS only with the certificate, otherwise plain HTTP."""
    exposure = environment.workloads.inference.http
    prefix = "alb.ingress.kubernetes.io"
    annotations = {f"{prefix}/scheme": exposure.scheme,
                   f"{prefix}/subnets": ",".join(load_balancer_subnet_names(environment)),
                   f"{prefix}/inbound-cidrs": ",".join(_clients(exposure))}
    if exposure.certificate_arn:
        annotations |= {f"{prefix}/listen-ports": json.dumps([{"HTTPS": HTTPS_PORT}]),
                        f"{prefix}/certificate-arn": exposure.certificate_arn,
                        f"{prefix}/ssl-policy": TLS_POLICY}
    else:
        annotations[f"{prefix}/listen-ports"] = json.dumps([{"HTTP": HTTP_PORT}])
    return annotations


@dataclass(frozen=True)
class GrpcListener:
    """What an NLB Service of a gRPC deployment says: its annotations, listener port and source ranges."""

    annotations: dict[str, str]
    port: int
    source_ranges: list[str]


def grpc_listener(environment: Environment) -> GrpcListener:
    """The NLB's placement, sources and listener: TLS on 443 with the certificate, otherwise plain TCP on 8001.
    The target group does not preserve client addresses, so the servers see the NLB's own address (in the public
    subnets), which is what the mesh admits."""
    exposure = environment.workloads.inference.tcp
    prefix = "service.beta.kubernetes.io/aws-load-balancer"
    annotations = {f"{prefix}-scheme": exposure.scheme,
                   f"{prefix}-subnets": ",".join(load_balancer_subnet_names(environment)),
                   f"{prefix}-target-group-attributes": "preserve_client_ip.enabled=false"}
    if not exposure.certificate_arn:
        return GrpcListener(annotations, PLAIN_GRPC_PORT, _clients(exposure))
    annotations |= {f"{prefix}-ssl-cert": exposure.certificate_arn, f"{prefix}-ssl-ports": str(HTTPS_PORT),
                    f"{prefix}-ssl-negotiation-policy": TLS_POLICY}
    return GrpcListener(annotations, HTTPS_PORT, _clients(exposure))


def in_cluster_clients(environment: Environment) -> dict[str, list[MeshClient]]:
    """Deployment name -> the workloads inside the cluster that call it: the agent runtimes call the deployment
    ``workloads.agents.llm_deployment`` names."""
    agents = workload_identities()["agents"]
    return {environment.workloads.agents.llm_deployment: [MeshClient(agents.namespace, agents.service_account)]}


def _authorization(name: str, server: str, kind: str, authentication: str) -> Manifest:
    return {"apiVersion": f"{POLICY_API}/v1alpha1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"targetRef": {"group": POLICY_API, "kind": "Server", "name": server},
                     "requiredAuthenticationRefs": [{"group": POLICY_API, "kind": kind, "name": authentication}]}}


def mesh_authorizations(environment: Environment, served: dict[str, ModelDeployment]) -> list[Manifest]:
    """Per serving port of each served deployment: a Server that denies by default, the load balancers' subnets
    authorized on it; on the HTTP port of a deployment with in-cluster clients, those clients by identity."""
    load_balancers = {"apiVersion": f"{POLICY_API}/v1alpha1", "kind": "NetworkAuthentication",
                      "metadata": {"name": LOAD_BALANCERS, "namespace": NAMESPACE},
                      "spec": {"networks": [{"cidr": cidr} for cidr in load_balancer_networks(environment)]}}
    manifests = [load_balancers]
    clients = in_cluster_clients(environment)
    for name, deployment in served.items():
        ports = engine_catalogue()[deployment.engine]["ports"]
        for port_name, protocol in SERVING_PORTS.items():
            if port_name not in ports:
                continue
            server = f"{name}-{port_name}"
            manifests += [
                {"apiVersion": f"{POLICY_API}/v1beta3", "kind": "Server",
                 "metadata": {"name": server, "namespace": NAMESPACE},
                 "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": name}}, "port": port_name,
                          "proxyProtocol": protocol, "accessPolicy": "deny"}},
                _authorization(f"{server}-from-{LOAD_BALANCERS}", server, "NetworkAuthentication", LOAD_BALANCERS),
            ]
            if port_name == "http" and clients.get(name):
                authentication = f"{name}-clients"
                manifests += [
                    {"apiVersion": f"{POLICY_API}/v1alpha1", "kind": "MeshTLSAuthentication",
                     "metadata": {"name": authentication, "namespace": NAMESPACE},
                     "spec": {"identities": sorted(client.identity for client in clients[name])}},
                    _authorization(f"{server}-from-clients", server, "MeshTLSAuthentication", authentication),
                ]
    return manifests
