"""GitHub Actions runners inside the environment's VPC (AWS CodeBuild), for the jobs that talk to the cluster API.

The API endpoint is private (dev adds a few public CIDRs, none of them GitHub's), so GitHub-hosted runners cannot
plan or apply the in-cluster layers. A CodeBuild project in the private subnets takes each queued workflow job whose
``runs-on`` label is ``codebuild-<project>-<run id>-<run attempt>``, and the cluster security group admits its
security group on 443.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.codebuild_project import (
    CodebuildProject,
    CodebuildProjectArtifacts,
    CodebuildProjectEnvironment,
    CodebuildProjectLogsConfig,
    CodebuildProjectLogsConfigCloudwatchLogs,
    CodebuildProjectSource,
    CodebuildProjectSourceAuth,
    CodebuildProjectVpcConfig,
)
from cdktf_cdktf_provider_aws.codebuild_webhook import (
    CodebuildWebhook,
    CodebuildWebhookFilterGroup,
    CodebuildWebhookFilterGroupFilter,
)
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from modules.common.iam import ServiceRole
from modules.common.kms import EncryptionKey

#: CodeBuild's managed Amazon Linux 2023 image: it carries git, Python 3, unzip and the AWS CLI (``aws eks
#: get-token``), which the in-cluster jobs need besides Terraform.
RUNNER_IMAGE = "aws/codebuild/amazonlinux-x86_64-standard:5.0"
RUNNER_COMPUTE = "BUILD_GENERAL1_MEDIUM"
#: A runner lives as long as its job; the deploy job's own limit is 120 minutes.
RUNNER_TIMEOUT_MINUTES = 150
#: The webhook event that makes CodeBuild start a runner for a queued GitHub Actions job.
WORKFLOW_JOB_QUEUED = "WORKFLOW_JOB_QUEUED"


class GithubActionsRunner(Construct):
    """A CodeBuild project that hosts GitHub Actions runners in the private subnets.

    Inputs (keyword-only):
      name: the project name; jobs select it with ``runs-on: codebuild-<name>-${{ github.run_id }}-${{
        github.run_attempt }}``.
      github_repository: ``<owner>/<name>`` whose workflow jobs the runners take.
      connection_arn: the account's GitHub connection (CodeConnections), authorized once by hand.
      vpc_id, subnet_ids: where the runners start (the private subnets; they leave through NAT).
      cluster_security_group_id: the EKS cluster security group, which admits the runners on 443.
      key_arn: the customer-managed key for the runners' logs and build output.
      log_retention_days: how long the runners' logs are kept.
      account_id, region: where the project lives.
    The runners' role can only write their logs, use the key, manage their network interfaces in these subnets and
    use the GitHub connection; the jobs act in AWS through the workflow's own OIDC role. Exposes ``project``,
    ``security_group`` and ``role``.
    """

    def __init__(self, scope: Construct, id: str, *, name: str, github_repository: str, connection_arn: str,
                 vpc_id: str, subnet_ids: Sequence[str], cluster_security_group_id: str, key_arn: str,
                 log_retention_days: int, account_id: str, region: str) -> None:
        super().__init__(scope, id)
        self.security_group = SecurityGroup(
            self, "security-group", name=name, vpc_id=vpc_id,
            description=f"GitHub Actions runners of CodeBuild project {name}", tags={"Name": name})
        # HTTPS only: the cluster API, the VPC endpoints, GitHub, Terraform's registry and the chart repositories.
        # (DNS to the VPC resolver is not subject to security groups.)
        VpcSecurityGroupEgressRule(self, "runners-to-https", security_group_id=self.security_group.id,
                                   ip_protocol="tcp", from_port=443, to_port=443, cidr_ipv4="0.0.0.0/0",
                                   description="Runners to HTTPS: the cluster API, AWS APIs, GitHub, registries")
        VpcSecurityGroupIngressRule(self, "cluster-api-from-runners", security_group_id=cluster_security_group_id,
                                    ip_protocol="tcp", from_port=443, to_port=443,
                                    referenced_security_group_id=self.security_group.id,
                                    description="GitHub Actions runners to the Kubernetes API")

        log_group = CloudwatchLogGroup(self, "logs", name=f"/aws/codebuild/{name}",
                                       retention_in_days=log_retention_days, kms_key_id=key_arn)
        network_interfaces = f"arn:aws:ec2:{region}:{account_id}:network-interface/*"
        self.role = ServiceRole(self, "role", name=name, service="codebuild.amazonaws.com", inline_policy=[
            {"Sid": "WriteOwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": [log_group.arn, f"{log_group.arn}:*"]},
            # CodeBuild creates the runner's network interface with the project's role; the Describe calls take
            # no resource.
            {"Sid": "DescribeNetwork", "Effect": "Allow", "Resource": "*", "Action": [
                "ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups", "ec2:DescribeVpcs"]},
            {"Sid": "ManageRunnerInterfaces", "Effect": "Allow", "Resource": "*",
             "Action": ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"]},
            {"Sid": "AttachInterfacesInPrivateSubnetsOnly", "Effect": "Allow",
             "Action": "ec2:CreateNetworkInterfacePermission", "Resource": network_interfaces,
             "Condition": {"StringEquals": {
                 "ec2:Subnet": [f"arn:aws:ec2:{region}:{account_id}:subnet/{s}" for s in subnet_ids],
                 "ec2:AuthorizedService": "codebuild.amazonaws.com"}}},
            {"Sid": "UseTheGithubConnection", "Effect": "Allow", "Resource": connection_arn,
             "Action": ["codeconnections:GetConnectionToken", "codeconnections:GetConnection"]},
            *EncryptionKey.statements_to_use([key_arn]),
        ])

        self.project = CodebuildProject(
            self, "project", name=name, description=f"GitHub Actions runners for {github_repository} in the VPC",
            service_role=self.role.arn, build_timeout=RUNNER_TIMEOUT_MINUTES, encryption_key=key_arn,
            artifacts=CodebuildProjectArtifacts(type="NO_ARTIFACTS"),
            environment=CodebuildProjectEnvironment(compute_type=RUNNER_COMPUTE, image=RUNNER_IMAGE,
                                                    type="LINUX_CONTAINER", privileged_mode=False),
            source=CodebuildProjectSource(
                type="GITHUB", location=f"https://github.com/{github_repository}.git",
                auth=CodebuildProjectSourceAuth(type="CODECONNECTIONS", resource=connection_arn)),
            vpc_config=CodebuildProjectVpcConfig(vpc_id=vpc_id, subnets=list(subnet_ids),
                                                 security_group_ids=[self.security_group.id]),
            logs_config=CodebuildProjectLogsConfig(cloudwatch_logs=CodebuildProjectLogsConfigCloudwatchLogs(
                status="ENABLED", group_name=log_group.name)),
            # CodeBuild checks the role's network permissions when it creates a VPC project.
            depends_on=[self.role.role, self.role.policy])
        CodebuildWebhook(self, "webhook", project_name=self.project.name, build_type="BUILD",
                         filter_group=[CodebuildWebhookFilterGroup(filter=[CodebuildWebhookFilterGroupFilter(
                             type="EVENT", pattern=WORKFLOW_JOB_QUEUED)])])
