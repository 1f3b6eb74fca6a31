"""The VPC: public and private subnets per AZ, NAT, routes, VPC endpoints for private nodes, and flow logs."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.eip import Eip
from cdktf_cdktf_provider_aws.flow_log import FlowLog
from cdktf_cdktf_provider_aws.internet_gateway import InternetGateway
from cdktf_cdktf_provider_aws.nat_gateway import NatGateway
from cdktf_cdktf_provider_aws.route import Route
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from cdktf_cdktf_provider_aws.vpc_endpoint import VpcEndpoint
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from modules.common.iam import ServiceRole
from modules.common.kms import EncryptionKey
from platform_config.models import Environment, NatStrategy

#: Interface endpoints private nodes need to pull images, get credentials, ship logs and join the cluster.
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "sts", "logs", "ec2", "eks-auth")

#: Subnet role tags the AWS Load Balancer Controller uses to place internet-facing and internal load balancers.
PUBLIC_ELB_TAG = {"kubernetes.io/role/elb": "1"}
PRIVATE_ELB_TAG = {"kubernetes.io/role/internal-elb": "1"}


class Network(Construct):
    """The environment's VPC.

    Inputs (keyword-only):
      environment: the validated environment; uses ``availability_zones``, ``network``, ``account_id``,
        ``region``, ``cluster.kms_deletion_window_days`` and ``protection``.
    Exposes ``vpc``, ``public_subnets``, ``private_subnets`` (ordered like the AZs), ``nat_gateways``,
    ``private_route_tables`` and ``flow_log_key``.
    """

    def __init__(self, scope: Construct, id: str, *, environment: Environment) -> None:
        super().__init__(scope, id)
        env = environment
        net = env.network
        name = env.cluster_name
        self.vpc = Vpc(self, "vpc", cidr_block=str(net.vpc_cidr), enable_dns_hostnames=True,
                       enable_dns_support=True, tags={"Name": name})
        # Nothing may use the default security group: managing it with no rules empties it.
        DefaultSecurityGroup(self, "default-security-group", vpc_id=self.vpc.id,
                             tags={"Name": f"{name}-default-unused"})
        igw = InternetGateway(self, "internet-gateway", vpc_id=self.vpc.id, tags={"Name": name})

        self.public_subnets, self.private_subnets = [], []
        for zone, public_cidr, private_cidr in zip(env.availability_zones, net.public_subnets,
                                                   net.private_subnets, strict=True):
            self.public_subnets.append(Subnet(
                self, f"public-{zone}", vpc_id=self.vpc.id, availability_zone=zone, cidr_block=str(public_cidr),
                map_public_ip_on_launch=False, tags={"Name": env.subnet_name("public", zone), **PUBLIC_ELB_TAG}))
            self.private_subnets.append(Subnet(
                self, f"private-{zone}", vpc_id=self.vpc.id, availability_zone=zone,
                cidr_block=str(private_cidr), tags={"Name": env.subnet_name("private", zone), **PRIVATE_ELB_TAG}))

        public_routes = RouteTable(self, "public-routes", vpc_id=self.vpc.id, tags={"Name": f"{name}-public"})
        Route(self, "public-default-route", route_table_id=public_routes.id, destination_cidr_block="0.0.0.0/0",
              gateway_id=igw.id)
        for zone, subnet in zip(env.availability_zones, self.public_subnets, strict=True):
            RouteTableAssociation(self, f"public-routes-{zone}", subnet_id=subnet.id, route_table_id=public_routes.id)

        nat_zones = env.availability_zones if net.nat_gateways is NatStrategy.ONE_PER_AZ else env.availability_zones[:1]
        self.nat_gateways = []
        for zone, subnet in zip(nat_zones, self.public_subnets, strict=False):
            address = Eip(self, f"nat-address-{zone}", domain="vpc", tags={"Name": f"{name}-nat-{zone}"},
                          depends_on=[igw])
            self.nat_gateways.append(NatGateway(self, f"nat-{zone}", allocation_id=address.id, subnet_id=subnet.id,
                                                tags={"Name": f"{name}-{zone}"}, depends_on=[igw]))

        self.private_route_tables = []
        for index, (zone, subnet) in enumerate(zip(env.availability_zones, self.private_subnets, strict=True)):
            table = RouteTable(self, f"private-routes-{zone}", vpc_id=self.vpc.id,
                               tags={"Name": f"{name}-private-{zone}"})
            nat = self.nat_gateways[index if net.nat_gateways is NatStrategy.ONE_PER_AZ else 0]
            Route(self, f"private-default-route-{zone}", route_table_id=table.id,
                  destination_cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)
            RouteTableAssociation(self, f"private-routes-assoc-{zone}", subnet_id=subnet.id, route_table_id=table.id)
            self.private_route_tables.append(table)

        self._endpoints(env)
        self._flow_logs(env)

    def _endpoints(self, env: Environment) -> None:
        name = env.cluster_name
        VpcEndpoint(self, "endpoint-s3", vpc_id=self.vpc.id, service_name=f"com.amazonaws.{env.region}.s3",
                    vpc_endpoint_type="Gateway", route_table_ids=[t.id for t in self.private_route_tables],
                    tags={"Name": f"{name}-s3"})
        endpoints_sg = SecurityGroup(self, "endpoints-security-group", name=f"{name}-vpc-endpoints",
                                     description="HTTPS from inside the VPC to the interface endpoints",
                                     vpc_id=self.vpc.id, tags={"Name": f"{name}-vpc-endpoints"})
        VpcSecurityGroupIngressRule(self, "endpoints-https-from-vpc", security_group_id=endpoints_sg.id,
                                    description="HTTPS from the VPC", ip_protocol="tcp", from_port=443, to_port=443,
                                    cidr_ipv4=str(env.network.vpc_cidr))
        for service in INTERFACE_ENDPOINTS:
            VpcEndpoint(self, f"endpoint-{service}", vpc_id=self.vpc.id,
                        service_name=f"com.amazonaws.{env.region}.{service}", vpc_endpoint_type="Interface",
                        private_dns_enabled=True, subnet_ids=[s.id for s in self.private_subnets],
                        security_group_ids=[endpoints_sg.id], tags={"Name": f"{name}-{service}"})

    def _flow_logs(self, env: Environment) -> None:
        name = env.cluster_name
        self.flow_log_key = EncryptionKey(
            self, "flow-log-key", alias=f"{name}-flow-logs", description=f"VPC flow logs of {name}",
            account_id=env.account_id, region=env.region,
            deletion_window_days=env.cluster.kms_deletion_window_days, log_groups=True,
            prevent_destroy=env.protection.prevent_destroy)
        group = CloudwatchLogGroup(self, "flow-log-group", name=f"/aws/vpc/{name}/flow-logs",
                                   retention_in_days=env.network.flow_log_retention_days,
                                   kms_key_id=self.flow_log_key.arn)
        role = ServiceRole(self, "flow-log-role", name=f"{name}-vpc-flow-logs", service="vpc-flow-logs.amazonaws.com",
                           inline_policy=[{
                               "Effect": "Allow",
                               "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                               "Resource": [group.arn, f"{group.arn}:*"],
                           }])
        FlowLog(self, "flow-log", vpc_id=self.vpc.id, traffic_type="ALL", log_destination_type="cloud-watch-logs",
                log_destination=group.arn, iam_role_arn=role.arn, max_aggregation_interval=60,
                tags={"Name": f"{name}-flow-logs"})
