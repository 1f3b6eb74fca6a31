"""NetworkPolicy semantics, as the API defines them and the VPC CNI's network policy agent enforces them.

A connection from a source to a destination port passes only when both sides let it: the source pod's egress
(if any policy with policyType Egress selects the pod) and the destination pod's ingress (likewise). A side that
is not a pod (a load balancer, the control plane, an address outside the cluster) has no policy of its own.
Within one side, policies are additive: one rule of one selecting policy that matches the peer and the port is
enough.

VPC CNI specifics modelled here:
- ipBlock is matched against the peer's address, pods included (pods get addresses from the VPC's subnets); the
  API leaves ipBlock on pod addresses to the implementation.
- A pod's egress is checked before kube-proxy translates a Service's ClusterIP; the controller adds the ClusterIPs
  of the Services behind pod and namespace selector peers. Flows here go to pod addresses; a Service without
  selector (the `kubernetes` Service of the API server) is a network of its own address.
- Not modelled: the agent's implicit allow of the pod's own node IP (kubelet probes) and host-network pods, which
  no NetworkPolicy governs.

``certainly`` decides how an endpoint that may have any address of its ranges is judged: ``True`` asks whether
the flow passes from (or to) every address (a required flow must), each range being covered by one ipBlock;
``False`` whether it passes for some address (a flow that must never pass must not, for any).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network
from typing import Any

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Endpoint:
    """One end of a flow: a pod (``namespace`` set, with its labels, addresses and named container ports) or a
    network (``namespace`` None: only its addresses)."""

    name: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    addresses: tuple[IPv4Network, ...] = ()
    #: Container port name -> (number, protocol): what a named port in a policy resolves to on this pod.
    named_ports: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    #: For networks: the roles (control-plane, nodes, ...) that share these addresses.
    roles: frozenset[str] = frozenset()

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None


@dataclass(frozen=True)
class Flow:
    source: Endpoint
    destination: Endpoint
    port: int
    protocol: str = "TCP"

    def __str__(self) -> str:
        return f"{self.source.name} -> {self.destination.name} {self.port}/{self.protocol}"


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A label selector: every matchLabels pair and every matchExpressions requirement holds; {} selects all."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for requirement in selector.get("matchExpressions") or []:
        key, operator, values = requirement["key"], requirement["operator"], requirement.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _block_matches(block: Mapping[str, Any], addresses: Sequence[IPv4Network], certainly: bool) -> bool:
    cidr = IPv4Network(block["cidr"])
    excepted = [IPv4Network(e) for e in block.get("except") or []]
    if not addresses:
        return False
    if certainly:
        return all(a.subnet_of(cidr) and not any(a.overlaps(e) for e in excepted) for a in addresses)
    return any(a.overlaps(cidr) and not any(a.subnet_of(e) for e in excepted) for a in addresses)


def _with_peer(flow: Flow, direction: str, peer: Endpoint) -> Flow:
    return replace(flow, destination=peer) if direction == "Egress" else replace(flow, source=peer)


def _policy_types(spec: Mapping[str, Any]) -> list[str]:
    """The API's default: Ingress always, Egress when the spec has egress rules."""
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if spec.get("egress") else [])]


class PolicySet:
    """The NetworkPolicies of one cluster, and the labels of its namespaces."""

    def __init__(self, policies: Iterable[Mapping[str, Any]],
                 namespace_labels: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.policies = list(policies)
        self._namespace_labels = dict(namespace_labels or {})
        self._selecting: dict[tuple, list[Mapping[str, Any]]] = {}

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        """A namespace's labels, with the name label the API server sets on every namespace."""
        return {**self._namespace_labels.get(namespace, {}), NAMESPACE_NAME_LABEL: namespace}

    def selecting(self, pod: Endpoint, direction: str) -> list[Mapping[str, Any]]:
        """The policies that isolate ``pod`` for ``direction`` (Ingress or Egress)."""
        key = (pod.namespace, tuple(sorted(pod.labels.items())), direction)
        if key not in self._selecting:
            self._selecting[key] = [
                p for p in self.policies
                if p["metadata"]["namespace"] == pod.namespace and selects(p["spec"].get("podSelector"), pod.labels)
                and direction in _policy_types(p["spec"])]
        return self._selecting[key]

    def _peer_matches(self, peer: Mapping[str, Any], policy_namespace: str, endpoint: Endpoint,
                      certainly: bool) -> bool:
        if "ipBlock" in peer:
            return _block_matches(peer["ipBlock"], endpoint.addresses, certainly)
        if not endpoint.is_pod:
            return False  # pod and namespace selectors select pods only
        namespace_selector = peer.get("namespaceSelector")
        if namespace_selector is None:
            in_namespace = endpoint.namespace == policy_namespace
        else:
            in_namespace = selects(namespace_selector, self.namespace_labels(endpoint.namespace))
        return in_namespace and (peer.get("podSelector") is None or selects(peer["podSelector"], endpoint.labels))

    @staticmethod
    def _port_matches(ports: Sequence[Mapping[str, Any]] | None, flow: Flow) -> bool:
        if not ports:
            return True
        for entry in ports:
            if entry.get("protocol", "TCP") != flow.protocol:
                continue
            port = entry.get("port")
            if port is None:
                return True
            if isinstance(port, str) and not port.isdigit():
                # A named port resolves on the destination pod, for ingress and egress rules alike.
                if flow.destination.named_ports.get(port) == (flow.port, flow.protocol):
                    return True
                continue
            if int(port) <= flow.port <= int(entry.get("endPort", port)):
                return True
        return False

    def side_allows(self, direction: str, flow: Flow, *, certainly: bool) -> bool:
        """Whether the source's egress (``Egress``) or the destination's ingress (``Ingress``) lets ``flow``."""
        subject, peer = (flow.source, flow.destination) if direction == "Egress" else (flow.destination, flow.source)
        if not subject.is_pod:
            return True
        if certainly and len(peer.addresses) > 1:
            # Every range of the peer on its own: different rules (one ipBlock per subnet) may admit each.
            return all(self.side_allows(direction, _with_peer(flow, direction, replace(peer, addresses=(a,))),
                                        certainly=True) for a in peer.addresses)
        selecting = self.selecting(subject, direction)
        if not selecting:
            return True  # a pod no policy isolates for this direction is open
        peer_key = "to" if direction == "Egress" else "from"
        for policy in selecting:
            for rule in policy["spec"].get(direction.lower()) or []:
                if not self._port_matches(rule.get("ports"), flow):
                    continue
                peers = rule.get(peer_key)
                if not peers or any(self._peer_matches(p, policy["metadata"]["namespace"], peer, certainly)
                                    for p in peers):
                    return True
        return False

    def allows(self, flow: Flow, *, certainly: bool = True) -> bool:
        return (self.side_allows("Egress", flow, certainly=certainly)
                and self.side_allows("Ingress", flow, certainly=certainly))
