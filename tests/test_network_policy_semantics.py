"""The NetworkPolicy evaluator the flow tests rely on decides small cases the way the API and the VPC CNI do."""

from ipaddress import IPv4Network

import pytest
from network_policy_semantics import Endpoint, Flow, PolicySet, selects

SUBNET_A, SUBNET_B = IPv4Network("10.0.0.0/24"), IPv4Network("10.0.1.0/24")


def pod(namespace, labels=None, addresses=(SUBNET_A,), named_ports=None):
    return Endpoint(name=f"{namespace}/{labels}", namespace=namespace, labels=labels or {}, addresses=addresses,
                    named_ports=named_ports or {})


def network(*cidrs):
    return Endpoint(name="net", addresses=tuple(IPv4Network(c) for c in cidrs))


def policy(namespace, *, pods=None, types=None, ingress=None, egress=None, name="p"):
    spec = {"podSelector": {"matchLabels": pods} if pods else {}}
    if types is not None:
        spec["policyTypes"] = types
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def deny(namespace):
    return policy(namespace, types=["Ingress", "Egress"], name="default-deny")


def by_name(namespace):
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


WEB, API = pod("web", {"app": "web"}), pod("api", {"app": "api"})


def test_pods_no_policy_selects_are_open_both_ways():
    assert PolicySet([]).allows(Flow(WEB, API, 8080))


def test_default_deny_on_either_side_refuses_the_flow():
    assert not PolicySet([deny("api")]).allows(Flow(WEB, API, 8080))
    assert not PolicySet([deny("web")]).allows(Flow(WEB, API, 8080))


def test_a_flow_needs_the_sources_egress_and_the_destinations_ingress():
    egress = policy("web", types=["Egress"], egress=[{"to": [by_name("api")], "ports": [{"port": 8080}]}])
    ingress = policy("api", types=["Ingress"], ingress=[{"from": [by_name("web")], "ports": [{"port": 8080}]}])
    flow = Flow(WEB, API, 8080)
    assert PolicySet([deny("web"), deny("api"), egress, ingress]).allows(flow)
    assert not PolicySet([deny("web"), deny("api"), egress]).allows(flow)
    assert not PolicySet([deny("web"), deny("api"), ingress]).allows(flow)


def test_ports_and_protocols_must_match_and_tcp_is_the_default_protocol():
    ingress = policy("api", ingress=[{"from": [by_name("web")], "ports": [{"port": 53}]}])
    policies = PolicySet([ingress])
    assert policies.allows(Flow(WEB, API, 53, "TCP"))
    assert not policies.allows(Flow(WEB, API, 53, "UDP"))
    assert not policies.allows(Flow(WEB, API, 54, "TCP"))


def test_end_port_opens_a_range_and_a_port_without_number_opens_the_protocol():
    ranged = PolicySet([policy("api", ingress=[{"ports": [{"port": 9000, "endPort": 9010, "protocol": "TCP"}]}])])
    assert ranged.allows(Flow(WEB, API, 9010)) and not ranged.allows(Flow(WEB, API, 9011))
    udp = PolicySet([policy("api", ingress=[{"ports": [{"protocol": "UDP"}]}])])
    assert udp.allows(Flow(WEB, API, 5353, "UDP")) and not udp.allows(Flow(WEB, API, 5353, "TCP"))


def test_a_named_port_resolves_on_the_destination_pod():
    named = pod("api", {"app": "api"}, named_ports={"metrics": (9402, "TCP")})
    policies = PolicySet([policy("api", ingress=[{"ports": [{"port": "metrics", "protocol": "TCP"}]}])])
    assert policies.allows(Flow(WEB, named, 9402))
    assert not policies.allows(Flow(WEB, named, 9403))
    assert not policies.allows(Flow(WEB, API, 9402))  # API has no port of that name


def test_namespace_and_pod_selectors_in_one_peer_both_apply_but_separate_peers_are_alternatives():
    both = {**by_name("web"), "podSelector": {"matchLabels": {"role": "client"}}}
    client, other = pod("web", {"role": "client"}), pod("web", {"role": "batch"})
    together = PolicySet([policy("api", ingress=[{"from": [both]}])])
    assert together.allows(Flow(client, API, 80)) and not together.allows(Flow(other, API, 80))
    apart = PolicySet([policy("api", ingress=[{"from": [by_name("web"), {"podSelector": {}}]}])])
    assert apart.allows(Flow(other, API, 80))


def test_a_pod_selector_alone_selects_pods_of_the_policys_own_namespace():
    policies = PolicySet([policy("api", ingress=[{"from": [{"podSelector": {}}]}])])
    assert policies.allows(Flow(pod("api", {"app": "worker"}), API, 80))
    assert not policies.allows(Flow(WEB, API, 80))


def test_namespace_selectors_see_the_name_label_the_api_server_adds_and_the_namespaces_own_labels():
    labelled = PolicySet([policy("api", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}])],
                         namespace_labels={"web": {"team": "a"}})
    assert labelled.allows(Flow(WEB, API, 80))
    assert not labelled.allows(Flow(pod("other"), API, 80))


def test_the_policy_pod_selector_limits_which_pods_a_policy_isolates_and_opens():
    opened = policy("api", pods={"app": "dns"}, ingress=[{"ports": [{"port": 53, "protocol": "UDP"}]}])
    policies = PolicySet([deny("api"), opened])
    assert policies.allows(Flow(WEB, pod("api", {"app": "dns"}), 53, "UDP"))
    assert not policies.allows(Flow(WEB, API, 53, "UDP"))


def test_policy_types_default_to_ingress_plus_egress_only_when_egress_rules_exist():
    ingress_only = PolicySet([policy("web", ingress=[])])  # no policyTypes, no egress: isolates ingress only
    assert ingress_only.allows(Flow(WEB, API, 80))
    assert not ingress_only.allows(Flow(API, WEB, 80))
    with_egress = PolicySet([policy("web", egress=[{"to": [by_name("db")]}])])
    assert not with_egress.allows(Flow(WEB, API, 80))
    assert with_egress.allows(Flow(WEB, pod("db"), 80))


def test_an_empty_peer_list_matches_every_peer_and_empty_ports_every_port():
    policies = PolicySet([deny("api"), policy("api", ingress=[{}])])
    assert policies.allows(Flow(network("203.0.113.0/24"), API, 22))


def test_ip_blocks_match_pod_addresses_too_as_the_vpc_cni_does():
    policies = PolicySet([policy("api", ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}]}])])
    assert policies.allows(Flow(WEB, API, 80))
    assert not policies.allows(Flow(network("192.0.2.0/24"), API, 80))


def test_pod_and_namespace_selectors_never_match_addresses_outside_the_cluster():
    policies = PolicySet([policy("api", ingress=[{"from": [{"namespaceSelector": {}}]}])])
    assert not policies.allows(Flow(network("10.0.0.0/24"), API, 80))


def test_ip_block_exceptions_carve_out_addresses():
    rule = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}}], "ports": [{"port": 443}]}
    policies = PolicySet([policy("web", types=["Egress"], egress=[rule])])
    assert policies.allows(Flow(WEB, network("52.94.0.0/16"), 443))
    assert not policies.allows(Flow(WEB, network("169.254.169.254/32"), 443), certainly=False)


@pytest.mark.parametrize(("cidrs", "certainly", "allowed"), [
    (["10.0.0.0/24", "10.0.1.0/24"], True, True),     # each range inside one of the blocks
    (["10.0.0.0/24", "10.0.2.0/24"], True, False),    # one range outside every block
    (["10.0.0.0/24", "10.0.2.0/24"], False, True),    # but some address is admitted
    (["10.0.2.0/24"], False, False),
    (["10.0.0.0/23"], True, False),                   # one range across two blocks is not certain
])
def test_ranges_are_admitted_certainly_only_when_every_range_is_inside_one_block(cidrs, certainly, allowed):
    blocks = [{"ipBlock": {"cidr": str(SUBNET_A)}}, {"ipBlock": {"cidr": str(SUBNET_B)}}]
    policies = PolicySet([deny("api"), policy("api", ingress=[{"from": blocks}])])
    assert policies.allows(Flow(network(*cidrs), API, 80), certainly=certainly) is allowed


def test_match_expressions_operators():
    labels = {"tier": "web", "env": "prod"}
    assert selects({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]}, labels)
    assert not selects({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, labels)
    assert selects({"matchExpressions": [{"key": "env", "operator": "Exists"}]}, labels)
    assert not selects({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, labels)
    assert selects({}, labels) and not selects({"matchLabels": {"tier": "api"}}, labels)
