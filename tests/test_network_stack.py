"""The <env>-network stacks: VPC, subnets per AZ with ELB role tags, NAT per strategy, endpoints, flow logs."""

import json

import pytest

from platform_config.models import NatStrategy
from tests_support import ENVIRONMENT_NAMES, by_path, one, reference_to, resources

ENVIRONMENTS = ENVIRONMENT_NAMES


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_one_public_and_one_private_subnet_per_az_with_load_balancer_role_tags(stacks, environments, env_name):
    env = environments[env_name]
    subnets = by_path(stacks[f"{env_name}-network"], "aws_subnet")
    for zone, public, private in zip(env.availability_zones, env.network.public_subnets, env.network.private_subnets,
                                     strict=True):
        assert subnets[f"network/public-{zone}"]["cidr_block"] == str(public)
        assert subnets[f"network/public-{zone}"]["tags"]["kubernetes.io/role/elb"] == "1"
        assert subnets[f"network/public-{zone}"]["map_public_ip_on_launch"] is False
        assert subnets[f"network/private-{zone}"]["cidr_block"] == str(private)
        assert subnets[f"network/private-{zone}"]["tags"]["kubernetes.io/role/internal-elb"] == "1"
    assert len(subnets) == 2 * len(env.availability_zones)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_nat_gateways_follow_the_strategy_and_every_private_subnet_routes_through_one(stacks, environments, env_name):
    env = environments[env_name]
    nat_count = len(env.availability_zones) if env.network.nat_gateways is NatStrategy.ONE_PER_AZ else 1
    stack = stacks[f"{env_name}-network"]
    assert len(resources(stack, "aws_nat_gateway")) == nat_count
    private_defaults = [r for path, r in by_path(stack, "aws_route").items() if path.startswith("network/private")]
    nat_refs = {r["nat_gateway_id"] for r in private_defaults}
    assert all(reference_to("aws_nat_gateway", "id").match(ref) for ref in nat_refs)
    assert len(nat_refs) == nat_count


def test_a_nat_gateway_per_az_serves_the_private_subnet_of_its_own_az(stacks, environments):
    per_az = [env for env in environments.values() if env.network.nat_gateways is NatStrategy.ONE_PER_AZ]
    assert per_az, "no environment uses one NAT gateway per AZ: the rule is untested"
    for env in per_az:
        routes = by_path(stacks[f"{env.name}-network"], "aws_route")
        for zone in env.availability_zones:
            assert f"_nat-{zone}_" in routes[f"network/private-default-route-{zone}"]["nat_gateway_id"]


def test_the_default_security_group_is_managed_with_no_rules(stacks):
    default = one(stacks["prod-network"], "aws_default_security_group")
    assert "ingress" not in default and "egress" not in default


def test_private_nodes_have_the_s3_gateway_and_the_interface_endpoints_they_need(stacks):
    endpoints = {e["service_name"]: e for e in resources(stacks["prod-network"], "aws_vpc_endpoint").values()}
    assert set(endpoints) == {f"com.amazonaws.us-east-1.{s}" for s in
                              ("s3", "ecr.api", "ecr.dkr", "sts", "logs", "ec2", "eks-auth")}
    assert endpoints["com.amazonaws.us-east-1.s3"]["vpc_endpoint_type"] == "Gateway"
    assert len(endpoints["com.amazonaws.us-east-1.s3"]["route_table_ids"]) == 3
    for name, endpoint in endpoints.items():
        if not name.endswith(".s3"):
            assert endpoint["private_dns_enabled"] is True
            assert len(endpoint["subnet_ids"]) == 3


def test_flow_logs_go_to_a_log_group_encrypted_with_a_rotating_customer_managed_key(stacks):
    stack = stacks["prod-network"]
    flow_log = one(stack, "aws_flow_log")
    assert flow_log["traffic_type"] == "ALL"
    assert reference_to("aws_vpc", "id").match(flow_log["vpc_id"])
    group_name = flow_log["log_destination"].split(".")[1]
    group = resources(stack, "aws_cloudwatch_log_group")[group_name]
    assert group["retention_in_days"] == 365
    key_name = group["kms_key_id"].split(".")[1]
    key = resources(stack, "aws_kms_key")[key_name]
    assert key["enable_key_rotation"] is True
    statement_sids = {s["Sid"] for s in json.loads(key["policy"])["Statement"]}
    assert "CloudWatchLogsEncryptsThisAccountsLogGroups" in statement_sids


@pytest.mark.parametrize(("env_name", "protected"), [("dev", False), ("prod", True)])
def test_keys_are_protected_from_destroy_where_the_environment_asks(stacks, env_name, protected):
    key = one(stacks[f"{env_name}-network"], "aws_kms_key")
    assert key["lifecycle"]["prevent_destroy"] is protected
