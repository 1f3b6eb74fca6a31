"""Least-privilege workload identities: an IAM role per workload, bound to its service account by EKS Pod Identity.

Each role's policy names only that workload's buckets, secrets, log groups and the data key (and the key only when
used through S3 or Secrets Manager in this region): no ``*`` resource for s3, secretsmanager, kms or logs.
"""

from __future__ import annotations

from collections.abc import Mapping

from cdktf_cdktf_provider_aws.eks_pod_identity_association import EksPodIdentityAssociation
from constructs import Construct

from modules.common.iam import POD_IDENTITY_SERVICE, ServiceRole
from platform_config.data_layer import BucketAccess, WorkloadIdentity

_READ_OBJECTS = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging"]
_WRITE_OBJECTS = ["s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject", "s3:AbortMultipartUpload",
                  "s3:ListMultipartUploadParts"]
_LIST_BUCKET = ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"]
#: What a CloudWatch Logs Insights reader (Grafana's CloudWatch data source) needs on the groups it reads: find
#: the groups and their streams, list a group's fields, run a query and fetch its results. Each of these accepts a
#: log-group resource, so the statement names the groups. StopQuery is left out on purpose: it has no resource-level
#: permissions (only "*" would match), and a query Grafana abandons ends by itself at the Logs Insights timeout.
LOG_QUERY_ACTIONS = ["logs:DescribeLogGroups", "logs:DescribeLogStreams", "logs:GetLogGroupFields",
                     "logs:GetQueryResults", "logs:StartQuery"]


def _bucket_statements(buckets: Mapping[str, BucketAccess], bucket_arns: Mapping[str, str], key_arn: str,
                       region: str) -> list[dict]:
    if not buckets:
        return []
    arns = [bucket_arns[purpose] for purpose in buckets]
    writable = [bucket_arns[p] for p, access in buckets.items() if access is BucketAccess.READ_WRITE]
    statements = [
        {"Sid": "ListItsBuckets", "Effect": "Allow", "Action": _LIST_BUCKET, "Resource": arns},
        {"Sid": "ReadItsObjects", "Effect": "Allow", "Action": _READ_OBJECTS, "Resource": [f"{a}/*" for a in arns]},
    ]
    if writable:
        statements.append({"Sid": "WriteItsObjects", "Effect": "Allow", "Action": _WRITE_OBJECTS,
                           "Resource": [f"{a}/*" for a in writable]})
    key_actions = ["kms:Decrypt"] + (["kms:GenerateDataKey"] if writable else [])
    statements.append({"Sid": "UseTheDataKeyThroughS3", "Effect": "Allow", "Action": key_actions,
                       "Resource": [key_arn],
                       "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}})
    return statements


def _secret_statements(secret_arns: list[str], key_arn: str, region: str) -> list[dict]:
    if not secret_arns:
        return []
    return [
        {"Sid": "ReadItsSecrets", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue",
                                                               "secretsmanager:DescribeSecret"],
         "Resource": secret_arns},
        {"Sid": "UseTheDataKeyThroughSecretsManager", "Effect": "Allow", "Action": ["kms:Decrypt"],
         "Resource": [key_arn],
         "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}},
    ]


def _log_statements(log_group_arns: list[str]) -> list[dict]:
    if not log_group_arns:
        return []
    return [{"Sid": "WriteItsLogGroups", "Effect": "Allow",
             "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
             "Resource": [arn for group in log_group_arns for arn in (group, f"{group}:*")]}]


def _log_query_statements(log_group_arns: list[str]) -> list[dict]:
    if not log_group_arns:
        return []
    return [{"Sid": "QueryItsLogGroups", "Effect": "Allow", "Action": LOG_QUERY_ACTIONS,
             "Resource": [arn for group in log_group_arns for arn in (group, f"{group}:*")]}]


class PodIdentityRole(Construct):
    """An IAM role for one service account, assumed through EKS Pod Identity.

    Inputs (keyword-only): cluster_name, name (role name suffix), namespace, service_account, statements (the
    role's policy; none means a role with no permissions). Exposes ``role`` (``ServiceRole``) and ``arn``.
    """

    def __init__(self, scope: Construct, id: str, *, cluster_name: str, name: str, namespace: str,
                 service_account: str, statements: list[dict]) -> None:
        super().__init__(scope, id)
        self.role = ServiceRole(self, "role", name=f"{cluster_name}-{name}", service=POD_IDENTITY_SERVICE,
                                inline_policy=statements)
        self.arn = self.role.arn
        EksPodIdentityAssociation(self, "association", cluster_name=cluster_name, namespace=namespace,
                                  service_account=service_account, role_arn=self.role.arn)


class WorkloadIdentities(Construct):
    """One Pod Identity role and association per workload of the catalogue.

    Inputs (keyword-only):
      cluster_name: the EKS cluster the associations belong to.
      identities: workload name -> ``WorkloadIdentity`` (namespace, service account, what it may use).
      bucket_arns: bucket purpose -> bucket ARN.
      secret_arns: secret key -> secret ARN (the platform's secrets).
      log_group_arns: log group short name -> ARN (written to per ``log_groups``, queried per ``log_queries``).
      data_key_arn: the key that encrypts buckets and secrets.
      region: the environment's region (for ``kms:ViaService``).
    Exposes ``roles`` (``PodIdentityRole``) by workload name.
    """

    def __init__(self, scope: Construct, id: str, *, cluster_name: str, identities: Mapping[str, WorkloadIdentity],
                 bucket_arns: Mapping[str, str], secret_arns: Mapping[str, str], log_group_arns: Mapping[str, str],
                 data_key_arn: str, region: str) -> None:
        super().__init__(scope, id)
        self.roles: dict[str, PodIdentityRole] = {}
        for name, identity in identities.items():
            secrets = [secret_arns[key] for key in identity.secrets]
            statements = [
                *_bucket_statements(identity.buckets, bucket_arns, data_key_arn, region),
                *_secret_statements(secrets, data_key_arn, region),
                *_log_statements([log_group_arns[group] for group in identity.log_groups]),
                *_log_query_statements([log_group_arns[group] for group in identity.log_queries]),
            ]
            self.roles[name] = PodIdentityRole(
                self, name, cluster_name=cluster_name, name=name, namespace=identity.namespace,
                service_account=identity.service_account, statements=statements)
