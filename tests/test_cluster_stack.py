"""The <env>-cluster stacks: the EKS control plane, access, add-ons and security group rules."""

import json

import pytest

from tests_support import by_path, one, reference_to, resources


@pytest.fixture(scope="module")
def prod(stacks):
    return stacks["prod-cluster"]


def test_the_cluster_logs_all_five_control_plane_log_types(prod):
    assert one(prod, "aws_eks_cluster")["enabled_cluster_log_types"] == [
        "api", "audit", "authenticator", "controllerManager", "scheduler"]


def test_secrets_are_envelope_encrypted_with_a_rotating_customer_managed_key(prod):
    encryption = one(prod, "aws_eks_cluster")["encryption_config"]
    assert encryption["resources"] == ["secrets"]
    assert reference_to("aws_kms_key", "arn").match(encryption["provider"]["key_arn"])
    key = resources(prod, "aws_kms_key")[encryption["provider"]["key_arn"].split(".")[1]]
    assert key["enable_key_rotation"] is True
    assert key["deletion_window_in_days"] == 30


def test_access_is_by_api_access_entries_admin_for_admins_and_view_only_for_viewers(prod, environments):
    cluster = one(prod, "aws_eks_cluster")
    assert cluster["access_config"] == {"authentication_mode": "API",
                                        "bootstrap_cluster_creator_admin_permissions": False}
    settings = environments["prod"].cluster
    principals = [a.arn for a in settings.admin_principals] + [v.arn for v in settings.viewer_principals]
    assert [e["principal_arn"] for e in resources(prod, "aws_eks_access_entry").values()] == principals
    policies = {a["principal_arn"]: a["policy_arn"].rsplit("/", 1)[1]
                for a in resources(prod, "aws_eks_access_policy_association").values()}
    assert [policies[f"${{aws_eks_access_entry.{name}.principal_arn}}"]
            for name in resources(prod, "aws_eks_access_entry")] == \
        ["AmazonEKSClusterAdminPolicy"] * len(settings.admin_principals) + \
        ["AmazonEKSViewPolicy"] * len(settings.viewer_principals)
    assert all(a["access_scope"] == {"type": "cluster"}
               for a in resources(prod, "aws_eks_access_policy_association").values())


def test_the_api_endpoint_is_private_in_prod_and_public_only_for_listed_cidrs_in_dev(stacks):
    prod_vpc = one(stacks["prod-cluster"], "aws_eks_cluster")["vpc_config"]
    assert prod_vpc["endpoint_private_access"] is True
    assert prod_vpc["endpoint_public_access"] is False
    dev_vpc = one(stacks["dev-cluster"], "aws_eks_cluster")["vpc_config"]
    assert dev_vpc["endpoint_private_access"] is True
    assert dev_vpc["endpoint_public_access"] is True
    assert dev_vpc["public_access_cidrs"] == ["203.0.113.0/24"]


def test_the_control_plane_log_group_is_created_first_encrypted_and_retained(prod):
    cluster = one(prod, "aws_eks_cluster")
    group = by_path(prod, "aws_cloudwatch_log_group")["cluster/control-plane-logs"]
    assert group["name"] == "/aws/eks/mlops-prod/cluster"
    assert group["retention_in_days"] == 365
    assert reference_to("aws_kms_key", "arn").match(group["kms_key_id"])
    assert any(dep.startswith("aws_cloudwatch_log_group.") for dep in cluster["depends_on"])


def test_the_cluster_has_an_oidc_provider_for_its_issuer(prod):
    oidc = one(prod, "aws_iam_openid_connect_provider")
    assert oidc["url"].endswith(".identity[0].oidc[0].issuer}")
    assert oidc["client_id_list"] == ["sts.amazonaws.com"]


def test_managed_addons_include_network_policy_enforcement_and_pod_identity(prod):
    addons = {a["addon_name"]: a for a in resources(prod, "aws_eks_addon").values()}
    assert set(addons) == {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver",
                           "aws-efs-csi-driver"}
    assert json.loads(addons["vpc-cni"]["configuration_values"]) == {"enableNetworkPolicy": "true"}


@pytest.mark.parametrize(("addon", "service_account", "policy"), [
    ("aws-ebs-csi-driver", "ebs-csi-controller-sa", "AmazonEBSCSIDriverPolicy"),
    ("aws-efs-csi-driver", "efs-csi-controller-sa", "AmazonEFSCSIDriverPolicy"),
])
def test_csi_drivers_have_their_own_pod_identity_roles(prod, addon, service_account, policy):
    addons = {a["addon_name"]: a for a in resources(prod, "aws_eks_addon").values()}
    association = addons[addon]["pod_identity_association"]
    assert [a["service_account"] for a in association] == [service_account]
    role_name = association[0]["role_arn"].split(".")[1]
    role = resources(prod, "aws_iam_role")[role_name]
    trust = json.loads(role["assume_role_policy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(trust["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    attached = [a["policy_arn"] for a in resources(prod, "aws_iam_role_policy_attachment").values()
                if a["role"] == f"${{aws_iam_role.{role_name}.name}}"]
    assert attached == [f"arn:aws:iam::aws:policy/service-role/{policy}"]


def test_workload_addons_wait_for_the_cpu_node_groups_and_node_groups_wait_for_networking(prod):
    addons = {a["addon_name"]: a for a in resources(prod, "aws_eks_addon").values()}
    cpu_group_refs = {f"aws_eks_node_group.{name}" for name, group in resources(prod, "aws_eks_node_group").items()
                      if not group.get("taint")}
    assert cpu_group_refs
    for addon in ("coredns", "aws-ebs-csi-driver", "aws-efs-csi-driver"):
        assert set(addons[addon]["depends_on"]) == cpu_group_refs
    for group in resources(prod, "aws_eks_node_group").values():
        assert any("vpc-cni" in dep for dep in group["depends_on"])


@pytest.mark.parametrize("port", [8443, 9443, 10250, 443])
def test_the_control_plane_reaches_webhooks_and_kubelets_on_the_nodes(prod, port):
    rules = by_path(prod, "aws_vpc_security_group_ingress_rule")
    rule = rules[f"cluster/nodes-from-control-plane-{port}"]
    assert (rule["from_port"], rule["to_port"], rule["ip_protocol"]) == (port, port, "tcp")
    assert rule["referenced_security_group_id"].endswith(".vpc_config[0].cluster_security_group_id}")
    assert reference_to("aws_security_group", "id").match(rule["security_group_id"])


def test_prod_cluster_has_deletion_protection_and_dev_does_not(stacks):
    assert one(stacks["prod-cluster"], "aws_eks_cluster")["deletion_protection"] is True
    assert one(stacks["dev-cluster"], "aws_eks_cluster")["deletion_protection"] is False
