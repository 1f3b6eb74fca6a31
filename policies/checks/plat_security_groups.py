"""Security group rules: nothing is admitted from the whole internet, and all-protocol rules stay private.

CKV_AWS_24/25/260/277 look at given ports; a rule with ``ip_protocol = -1`` has no ports and passes them, and
443 open to 0.0.0.0/0 passes them too. The platform admits the internet only through load balancers that the
AWS Load Balancer Controller creates with their own groups, never on a group written here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories
from plat_common import PlatformCheck, blocks, is_reference, scalar, scalars

RULE_TYPES = ["aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule", "aws_security_group_rule",
              "aws_security_group"]
OPEN_TO_ALL = {"0.0.0.0/0", "::/0"}
ALL_PROTOCOLS = {"-1", "all"}


def _rules(resource_type: str, conf: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(direction, rule) of a standalone rule resource or of a group's inline blocks; rule keys are those of
    the new rule resources (ip_protocol, cidr_ipv4, cidr_ipv6) or of the older ones (protocol, cidr_blocks)."""
    if resource_type == "aws_security_group":
        for direction in ("ingress", "egress"):
            for rule in blocks(conf, direction):
                yield direction, rule
    elif resource_type == "aws_security_group_rule":
        yield str(scalar(conf, "type", "ingress")), conf
    else:
        yield ("ingress" if resource_type.endswith("ingress_rule") else "egress"), conf


def _cidrs(rule: dict[str, Any]) -> list[str]:
    found = [scalar(rule, "cidr_ipv4"), scalar(rule, "cidr_ipv6"), *scalars(rule, "cidr_blocks"),
             *scalars(rule, "ipv6_cidr_blocks")]
    return [str(c).strip() for c in found if c is not None]


def _private(cidr: str) -> bool:
    """A literal private range (RFC 1918, unique local); references (the VPC's CIDR) count as private."""
    if is_reference(cidr):
        return True
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
    return network.is_private and network.prefixlen > 0


class SecurityGroupNoIngressFromInternet(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_25", name="Security groups admit no traffic from 0.0.0.0/0 or ::/0, on any port",
            why="a rule open to the internet on the nodes or a data store exposes every pod's port and every API "
                "behind it; public traffic enters through the load balancers the controller manages",
            resources=RULE_TYPES, categories=[CheckCategories.NETWORKING])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        resource_type = self.entity_type
        for direction, rule in _rules(resource_type, conf):
            if direction != "ingress":
                continue
            open_cidrs = OPEN_TO_ALL & set(_cidrs(rule))
            if open_cidrs:
                ports = f"{scalar(rule, 'from_port', '-')}-{scalar(rule, 'to_port', '-')}"
                yield f"ingress from {', '.join(sorted(open_cidrs))} (ports {ports})"


class SecurityGroupAllProtocolsStayPrivate(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_26",
            name="Security group rules for all protocols (ip_protocol -1) name a security group or a private range",
            why="a -1 rule opens every port and protocol; to a public range it is the whole host exposed (or free "
                "exfiltration), and port-based checks never see it because it has no ports",
            resources=RULE_TYPES, categories=[CheckCategories.NETWORKING])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        for direction, rule in _rules(self.entity_type, conf):
            protocol = str(scalar(rule, "ip_protocol", scalar(rule, "protocol", ""))).strip().lower()
            if protocol not in ALL_PROTOCOLS:
                continue
            public = [c for c in _cidrs(rule) if not _private(c)]
            if public:
                yield f"{direction} for all protocols to {', '.join(public)}"


SecurityGroupNoIngressFromInternet()
SecurityGroupAllProtocolsStayPrivate()
