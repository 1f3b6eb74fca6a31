"""``<env>-network``: the VPC, its subnets, NAT, endpoints and flow logs; the account's Auto Scaling
service-linked role, which the cluster key names."""

from __future__ import annotations

from cdktf import TerraformOutput
from constructs import Construct

from modules.common.layer_stack import LayerStack
from modules.network.service_linked_roles import AutoscalingServiceLinkedRole
from modules.network.vpc import Network
from platform_config.models import Environment


class NetworkStack(LayerStack):
    def __init__(self, scope: Construct, *, environment: Environment) -> None:
        super().__init__(scope, environment=environment, layer="network")
        self.network = Network(self, "network", environment=environment)
        self.autoscaling_role = AutoscalingServiceLinkedRole(self, "autoscaling-service-linked-role",
                                                             environment=environment)
        TerraformOutput(self, "vpc_id", value=self.network.vpc.id)
        TerraformOutput(self, "private_subnet_ids", value=[s.id for s in self.network.private_subnets])
