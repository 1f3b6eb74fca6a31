"""One environment's cluster as the network sees it (its synthesized NetworkPolicies, namespaces and address
ranges), and the two checks of platform_config/data/required_flows.yaml against it: required flows that no
policy allows, and flows outside the list that some policy does."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import yaml
from network_policy_semantics import NAMESPACE_NAME_LABEL, Endpoint, Flow, PolicySet

from platform_config.models import Environment
from tests_support import manifest_of, resources

FLOWS_FILE = Path(__file__).resolve().parent.parent / "platform_config" / "data" / "required_flows.yaml"
#: EKS creates it; the platform only adds policies to it.
KUBE_SYSTEM = "kube-system"
MESH_ANNOTATION = "linkerd.io/inject"
#: Ports sampled besides those the flow list and the policies name: common service ports an unlisted flow
#: would most likely use (SSH, HTTP(S), etcd, databases, caches, proxies, metrics, webhooks, the kubelet).
COMMON_PORTS = ((22, "TCP"), (53, "UDP"), (53, "TCP"), (80, "TCP"), (443, "TCP"), (2049, "TCP"), (2379, "TCP"),
                (3306, "TCP"), (4143, "TCP"), (4191, "TCP"), (5432, "TCP"), (6379, "TCP"), (8000, "TCP"),
                (8080, "TCP"), (8443, "TCP"), (9090, "TCP"), (9443, "TCP"), (10250, "TCP"))


def load_flows() -> dict[str, list[dict[str, Any]]]:
    with FLOWS_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _excluding(network: IPv4Network, excluded: list[IPv4Network]) -> list[IPv4Network]:
    remaining = [network]
    for hole in excluded:
        kept = []
        for part in remaining:
            if hole.subnet_of(part):
                kept.extend(part.address_exclude(hole))
            elif not part.subnet_of(hole):
                kept.append(part)
        remaining = kept
    return sorted(remaining)


def _partition(roles: Mapping[str, tuple[IPv4Network, ...]]) -> dict[frozenset[str], tuple[IPv4Network, ...]]:
    """Disjoint address ranges, each with the roles whose addresses contain it (grouped by that set of roles):
    the resolver's address inside a private subnet becomes its own range, shared by both roles."""
    atoms: list[tuple[IPv4Network, frozenset[str]]] = []
    for role, networks in roles.items():
        for network in networks:
            remaining, refined = [network], []
            for atom, owners in atoms:
                if not atom.overlaps(network):
                    refined.append((atom, owners))
                elif atom.subnet_of(network):
                    refined.append((atom, owners | {role}))
                    remaining = [piece for part in remaining for piece in _excluding(part, [atom])]
                else:
                    refined += [(piece, owners) for piece in atom.address_exclude(network)]
                    refined.append((network, owners | {role}))
                    remaining = []
            atoms = refined + [(piece, frozenset({role})) for piece in remaining]
    grouped: dict[frozenset[str], list[IPv4Network]] = {}
    for atom, owners in atoms:
        grouped.setdefault(owners, []).append(atom)
    return {owners: tuple(sorted(networks)) for owners, networks in grouped.items()}


def network_roles(environment: Environment) -> dict[str, tuple[IPv4Network, ...]]:
    """The addresses of each network role of required_flows.yaml, from the environment file."""
    network = environment.network
    private = tuple(network.private_subnets)

    def subnets(schemes: set[str]) -> tuple[IPv4Network, ...]:
        return (private if "internal" in schemes else ()) + \
            (tuple(network.public_subnets) if "internet-facing" in schemes else ())

    wandb = environment.workloads.wandb
    # The inference edge places its load balancers in the public subnets whatever their scheme.
    load_balancers = tuple(network.public_subnets)
    wandb_load_balancer = subnets({wandb.server.scheme} if wandb.self_managed and wandb.server else set())
    link_local = IPv4Network("169.254.0.0/16")
    return {
        "control-plane": private, "nodes": private, "data-services": private, "load-balancers": load_balancers,
        "wandb-load-balancer": wandb_load_balancer,
        "vpc-resolver": (IPv4Network(f"{network.vpc_cidr.network_address + 2}/32"),),
        "api-service": (IPv4Network(f"{environment.cluster.service_cidr.network_address + 1}/32"),),
        "internet": tuple(_excluding(IPv4Network("0.0.0.0/0"),
                                     [network.vpc_cidr, link_local, environment.cluster.service_cidr])),
        "pod-identity-agent": (IPv4Network("169.254.170.23/32"),),
        # Never listed: sampled so that a policy opening the node's metadata service shows up.
        "instance-metadata": (IPv4Network("169.254.169.254/32"),),
    }


def _ports(ports: Any) -> set[tuple[int, str]]:
    if ports == "any":
        return set()
    return {(int(number), protocol) for number, protocol in (p.split("/") for p in ports)}


@dataclass
class ClusterNetwork:
    """One environment's NetworkPolicies, namespaces and addresses."""

    policies: list[dict[str, Any]]
    namespace_meta: dict[str, dict[str, Any]]
    roles: dict[str, tuple[IPv4Network, ...]]
    pod_addresses: tuple[IPv4Network, ...]
    _policy_set: PolicySet | None = field(default=None, repr=False)

    @classmethod
    def from_synth(cls, stacks: Mapping[str, dict], environment: Environment) -> ClusterNetwork:
        """Every NetworkPolicy and Namespace the environment's stacks synthesize (any layer)."""
        policies, namespaces = [], {KUBE_SYSTEM: {"name": KUBE_SYSTEM}}
        for name, stack in stacks.items():
            if not name.startswith(f"{environment.name}-"):
                continue
            for body in resources(stack, "kubernetes_namespace_v1").values():
                namespaces[body["metadata"]["name"]] = body["metadata"]
            policies += [manifest_of("kubernetes_network_policy_v1", body, stack)
                         for body in resources(stack, "kubernetes_network_policy_v1").values()]
        return cls(policies=policies, namespace_meta=namespaces, roles=network_roles(environment),
                   pod_addresses=tuple(environment.network.private_subnets))

    @classmethod
    def from_manifests(cls, manifests: list[dict[str, Any]], environment: Environment) -> ClusterNetwork:
        """The same view of authored manifests (for a variant of an environment that is not synthesized)."""
        namespaces = {KUBE_SYSTEM: {"name": KUBE_SYSTEM}}
        namespaces |= {m["metadata"]["name"]: m["metadata"] for m in manifests if m["kind"] == "Namespace"}
        return cls(policies=[m for m in manifests if m["kind"] == "NetworkPolicy"], namespace_meta=namespaces,
                   roles=network_roles(environment), pod_addresses=tuple(environment.network.private_subnets))

    def with_policies(self, policies: list[dict[str, Any]]) -> ClusterNetwork:
        return ClusterNetwork(policies=policies, namespace_meta=self.namespace_meta, roles=self.roles,
                              pod_addresses=self.pod_addresses)

    def copy_of_policies(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.policies)

    @property
    def policy_set(self) -> PolicySet:
        if self._policy_set is None:
            self._policy_set = PolicySet(self.policies, {n: m.get("labels") or {}
                                                         for n, m in self.namespace_meta.items()})
        return self._policy_set

    # --- endpoints ---
    @property
    def namespaces(self) -> list[str]:
        return sorted(self.namespace_meta)

    @property
    def application(self) -> list[str]:
        return [n for n in self.namespaces
                if (self.namespace_meta[n].get("annotations") or {}).get(MESH_ANNOTATION) == "enabled"]

    def namespaces_of(self, spec: Mapping[str, Any]) -> list[str]:
        if "namespace" in spec:
            return [spec["namespace"]] if spec["namespace"] in self.namespace_meta else []
        group = spec["namespaces"]
        if isinstance(group, list):
            return [n for n in group if n in self.namespace_meta]
        return {"every": self.namespaces, "application": self.application,
                "system": [n for n in self.namespaces if n not in self.application]}[group]

    def pod(self, namespace: str, labels: Mapping[str, str] | None = None) -> Endpoint:
        labels = dict(labels or {})
        shown = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        return Endpoint(name=f"{namespace}/{{{shown}}}" if shown else f"{namespace}/*", namespace=namespace,
                        labels=labels, addresses=self.pod_addresses)

    def network(self, role: str) -> Endpoint:
        return Endpoint(name=role, addresses=self.roles[role], roles=frozenset({role}))

    def endpoints(self, spec: Mapping[str, Any], source: Endpoint | None = None) -> list[Endpoint]:
        if spec.get("same_namespace"):
            return [self.pod(source.namespace)] if source is not None and source.is_pod else []
        if "network" in spec:
            return [self.network(spec["network"])] if self.roles.get(spec["network"]) else []
        return [self.pod(namespace, spec.get("pods")) for namespace in self.namespaces_of(spec)]

    def covers(self, spec: Mapping[str, Any], endpoint: Endpoint, source: Endpoint) -> bool:
        if spec.get("same_namespace"):
            return endpoint.is_pod and endpoint.namespace == source.namespace
        if "network" in spec:
            return not endpoint.is_pod and spec["network"] in endpoint.roles
        return (endpoint.is_pod and endpoint.namespace in self.namespaces_of(spec)
                and all(endpoint.labels.get(k) == v for k, v in (spec.get("pods") or {}).items()))

    # --- samples ---
    def sample_ports(self, flows: list[dict[str, Any]]) -> list[tuple[int, str]]:
        ports = set(COMMON_PORTS)
        for flow in flows:
            ports |= _ports(flow["ports"])
        for policy in self.policies:
            for direction in ("ingress", "egress"):
                for rule in policy["spec"].get(direction) or []:
                    ports |= {(int(p["port"]), p.get("protocol", "TCP")) for p in rule.get("ports") or []
                              if str(p.get("port", "")).isdigit()}
        return sorted(ports)

    def sample_endpoints(self, flows: list[dict[str, Any]]) -> list[Endpoint]:
        """A pod without special labels in every namespace, a pod with each label set a flow or a policy
        selects, and each distinct network."""
        labelled = {(n, ()) for n in self.namespaces}
        for flow in flows:
            for side in (flow["from"], flow["to"]):
                if side.get("pods"):
                    labelled |= {(n, tuple(sorted(side["pods"].items()))) for n in self.namespaces_of(side)}
        for policy in self.policies:
            namespace = policy["metadata"]["namespace"]
            selected = (policy["spec"].get("podSelector") or {}).get("matchLabels")
            if selected:
                labelled.add((namespace, tuple(sorted(selected.items()))))
            for direction, key in (("ingress", "from"), ("egress", "to")):
                for rule in policy["spec"].get(direction) or []:
                    for peer in rule.get(key) or []:
                        pods = (peer.get("podSelector") or {}).get("matchLabels")
                        name = ((peer.get("namespaceSelector") or {}).get("matchLabels") or {}).get(
                            NAMESPACE_NAME_LABEL, namespace if "namespaceSelector" not in peer else None)
                        if pods and name in self.namespace_meta:
                            labelled.add((name, tuple(sorted(pods.items()))))
        pods = [self.pod(n, dict(labels)) for n, labels in sorted(labelled)]
        networks = [Endpoint(name="|".join(sorted(owners)), addresses=addresses, roles=owners)
                    for owners, addresses in sorted(_partition(self.roles).items(), key=lambda i: sorted(i[0]))]
        return [*pods, *networks]


def expand(cluster: ClusterNetwork, flow: Mapping[str, Any], ports: list[tuple[int, str]]) -> Iterator[Flow]:
    """The concrete flows of one list entry (``ports`` stands for ``any``)."""
    listed = sorted(_ports(flow["ports"])) or ports
    for source in cluster.endpoints(flow["from"]):
        for destination in cluster.endpoints(flow["to"], source=source):
            for port, protocol in listed:
                yield Flow(source, destination, port, protocol)


def missing_required(cluster: ClusterNetwork, flows: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Required flows that the source's egress or the destination's ingress refuses, with the entry's reason."""
    ports = cluster.sample_ports(flows["required"])
    return [f"{flow} ({entry['why']})" for entry in flows["required"] for flow in expand(cluster, entry, ports)
            if not cluster.policy_set.allows(flow, certainly=True)]


def unlisted_allowed(cluster: ClusterNetwork, flows: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Flows between sampled endpoints on sampled ports that no entry lists and both sides let through."""
    listed = [*flows["required"], *flows.get("tolerated", [])]
    ports = cluster.sample_ports(listed)
    endpoints = cluster.sample_endpoints(listed)
    found = []
    for source in endpoints:
        for destination in endpoints:
            if not (source.is_pod or destination.is_pod):
                continue
            entries = [e for e in listed if cluster.covers(e["from"], source, source)
                       and cluster.covers(e["to"], destination, source)]
            covered = set().union(*(_ports(e["ports"]) for e in entries)) if entries else set()
            if any(e["ports"] == "any" for e in entries):
                continue
            for port, protocol in ports:
                flow = Flow(source, destination, port, protocol)
                if (port, protocol) not in covered and cluster.policy_set.allows(flow, certainly=False):
                    found.append(str(flow))
    return found
