"""The EKS control plane: KMS envelope encryption, control-plane logs, API access entries, OIDC, security groups."""

from __future__ import annotations

from collections.abc import Sequence

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.eks_access_entry import EksAccessEntry
from cdktf_cdktf_provider_aws.eks_access_policy_association import (
    EksAccessPolicyAssociation,
    EksAccessPolicyAssociationAccessScope,
)
from cdktf_cdktf_provider_aws.eks_cluster import (
    EksCluster,
    EksClusterAccessConfig,
    EksClusterEncryptionConfig,
    EksClusterEncryptionConfigProvider,
    EksClusterKubernetesNetworkConfig,
    EksClusterUpgradePolicy,
    EksClusterVpcConfig,
)
from cdktf_cdktf_provider_aws.iam_openid_connect_provider import IamOpenidConnectProvider
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from modules.common.iam import ServiceRole
from modules.common.kms import EncryptionKey
from platform_config.cluster_access import access_policy_arn
from platform_config.models import Environment

#: All five control-plane log types.
CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
CLUSTER_ADMIN_POLICY = access_policy_arn("AmazonEKSClusterAdminPolicy")
#: Viewers read workloads, configuration and events, never Secrets (AmazonEKSAdminViewPolicy would include them,
#: and Helm keeps each release's rendered values, private keys included, in a Secret). The plan role is a viewer:
#: plans of the in-cluster layers therefore do not refresh (see .github/workflows/plan.yml).
CLUSTER_VIEWER_POLICY = access_policy_arn("AmazonEKSViewPolicy")

#: Ports the control plane must reach on nodes: the kubelet, admission webhooks (Linkerd's injector and policy
#: validator listen on 8443 and 9443; most other webhooks on 443) and aggregated APIs (metrics-server on 4443,
#: Kueue's visibility API on 8082). Without them pods start without sidecars, webhooks time out, or namespace
#: deletion hangs on an unavailable API.
CONTROL_PLANE_TO_NODE_PORTS = {443: "webhooks", 4443: "metrics-server", 8082: "Kueue visibility API",
                               8443: "webhooks (Linkerd injector)", 9443: "webhooks (Linkerd policy, controllers)",
                               10250: "kubelet"}


class Cluster(Construct):
    """The EKS cluster and what the control plane needs.

    Inputs (keyword-only):
      environment: the validated environment (``cluster`` settings, ``account_id``, ``region``, ``protection``).
      vpc_id, vpc_cidr: the VPC the cluster lives in.
      subnet_ids: the private subnets for the control-plane ENIs (and, by default, the nodes).
      autoscaling_role_arn: the account's Auto Scaling service-linked role, which the key policy names (it must
        exist before the key: a reference to the role's resource orders them).
    Exposes ``eks`` (the ``aws_eks_cluster``), ``key`` (the cluster's KMS key, also used for node volumes),
    ``node_security_group``, ``oidc_provider`` and ``name``.
    """

    def __init__(self, scope: Construct, id: str, *, environment: Environment, vpc_id: str, vpc_cidr: str,
                 subnet_ids: Sequence[str], autoscaling_role_arn: str) -> None:
        super().__init__(scope, id)
        env = environment
        settings = env.cluster
        self.name = env.cluster_name
        self.key = EncryptionKey(
            self, "key", alias=f"{self.name}-cluster",
            description=f"EKS secrets, control-plane logs and node volumes of {self.name}",
            account_id=env.account_id, region=env.region, deletion_window_days=settings.kms_deletion_window_days,
            log_groups=True, autoscaling_role_arn=autoscaling_role_arn, prevent_destroy=env.protection.prevent_destroy)
        # EKS writes to this group by name; creating it first lets us own its retention and encryption.
        log_group = CloudwatchLogGroup(self, "control-plane-logs", name=f"/aws/eks/{self.name}/cluster",
                                       retention_in_days=settings.log_retention_days, kms_key_id=self.key.arn)
        role = ServiceRole(self, "cluster-role", name=f"{self.name}-cluster", service="eks.amazonaws.com",
                           tag_session=True, managed_policies=["AmazonEKSClusterPolicy"])
        public = bool(settings.public_access_cidrs)
        self.eks = EksCluster(
            self, "eks", name=self.name, version=settings.kubernetes_version, role_arn=role.arn,
            vpc_config=EksClusterVpcConfig(
                subnet_ids=list(subnet_ids), endpoint_private_access=True, endpoint_public_access=public,
                public_access_cidrs=[str(c) for c in settings.public_access_cidrs] if public else None),
            encryption_config=EksClusterEncryptionConfig(
                resources=["secrets"], provider=EksClusterEncryptionConfigProvider(key_arn=self.key.arn)),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            access_config=EksClusterAccessConfig(authentication_mode="API",
                                                 bootstrap_cluster_creator_admin_permissions=False),
            kubernetes_network_config=EksClusterKubernetesNetworkConfig(
                ip_family="ipv4", service_ipv4_cidr=str(settings.service_cidr)),
            # Standard support only: extended support silently multiplies the control-plane price.
            upgrade_policy=EksClusterUpgradePolicy(support_type="STANDARD"),
            deletion_protection=env.protection.prevent_destroy,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=env.protection.prevent_destroy),
            depends_on=[log_group, role.role])

        grants = [("admin", settings.admin_principals, "cluster-admin", CLUSTER_ADMIN_POLICY),
                  ("viewer", settings.viewer_principals, "cluster-view", CLUSTER_VIEWER_POLICY)]
        for kind, principals, policy_id, policy_arn in grants:
            for index, principal in enumerate(principals):
                entry = EksAccessEntry(self, f"{kind}-{index}", cluster_name=self.eks.name,
                                       principal_arn=principal.arn, type="STANDARD")
                EksAccessPolicyAssociation(self, f"{kind}-{index}-{policy_id}", cluster_name=self.eks.name,
                                           principal_arn=entry.principal_arn, policy_arn=policy_arn,
                                           access_scope=EksAccessPolicyAssociationAccessScope(type="cluster"))

        # IRSA stays possible for tools that lack Pod Identity support; the platform's own roles use Pod Identity.
        self.oidc_provider = IamOpenidConnectProvider(
            self, "oidc-provider", url=self.eks.identity.get(0).oidc.get(0).issuer,
            client_id_list=["sts.amazonaws.com"])

        self._security_groups(vpc_id, vpc_cidr)

    def _security_groups(self, vpc_id: str, vpc_cidr: str) -> None:
        """A node security group with only the traffic the cluster needs (the nodes do not join EKS's
        all-open cluster security group: the launch templates attach this one instead)."""
        cluster_sg = self.eks.vpc_config.cluster_security_group_id
        self.node_security_group = SecurityGroup(
            self, "node-security-group", name=f"{self.name}-nodes", vpc_id=vpc_id,
            description=f"Nodes of EKS cluster {self.name}",
            # The AWS Load Balancer Controller adds target rules to the group tagged as owned by the cluster.
            tags={"Name": f"{self.name}-nodes", f"kubernetes.io/cluster/{self.name}": "owned"})
        nodes = self.node_security_group.id
        VpcSecurityGroupIngressRule(self, "nodes-from-nodes", security_group_id=nodes, ip_protocol="-1",
                                    referenced_security_group_id=nodes,
                                    description="Node to node: pods, CoreDNS, the mesh, EFA")
        for port, purpose in CONTROL_PLANE_TO_NODE_PORTS.items():
            VpcSecurityGroupIngressRule(self, f"nodes-from-control-plane-{port}", security_group_id=nodes,
                                        ip_protocol="tcp", from_port=port, to_port=port,
                                        referenced_security_group_id=cluster_sg,
                                        description=f"Control plane to nodes: {purpose}")
        VpcSecurityGroupIngressRule(self, "control-plane-from-nodes", security_group_id=cluster_sg,
                                    ip_protocol="tcp", from_port=443, to_port=443, referenced_security_group_id=nodes,
                                    description="Nodes to the Kubernetes API")
        VpcSecurityGroupEgressRule(self, "nodes-to-vpc", security_group_id=nodes, ip_protocol="-1",
                                   cidr_ipv4=vpc_cidr, description="Nodes to the VPC: endpoints, DNS, data stores")
        VpcSecurityGroupEgressRule(self, "nodes-to-internet-https", security_group_id=nodes, ip_protocol="tcp",
                                   from_port=443, to_port=443, cidr_ipv4="0.0.0.0/0",
                                   description="Nodes to HTTPS registries and APIs through NAT")
