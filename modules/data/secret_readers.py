"""One AWS role per namespace that receives secrets: its SecretStore's identity, reading that namespace's secrets only.

The role trusts the cluster's OIDC provider for one subject, the namespace's ``secrets-reader`` service account
(``platform_config.external_secrets``). External Secrets exchanges that account's token for the role when it syncs
the namespace's ExternalSecrets, and a namespaced SecretStore can only name accounts of its own namespace: so a
namespace reaches no role but its own, and its role names only the secrets consumed there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cdktf import Fn, TerraformLocal
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from constructs import Construct

from modules.common.iam import policy_document
from platform_config.external_secrets import reader_subject

STS_AUDIENCE = "sts.amazonaws.com"


class NamespaceSecretReaders(Construct):
    """Inputs (keyword-only):
      cluster_name: prefix of the role names (``<cluster_name>-secrets-<namespace>``).
      oidc_provider_arn, oidc_issuer_url: the cluster's IAM OIDC provider and its issuer URL (``https://...``).
      secret_arns: namespace -> the ARNs of the secrets its ExternalSecrets read (each namespace at least one).
      data_key_arn: the key the secrets are encrypted with (decrypt only through Secrets Manager).
      region: the environment's region (for ``kms:ViaService``).
    Exposes ``roles`` (namespace -> ``aws_iam_role``) and ``role_arns`` (namespace -> ARN).
    """

    def __init__(self, scope: Construct, id: str, *, cluster_name: str, oidc_provider_arn: str,
                 oidc_issuer_url: str, secret_arns: Mapping[str, Sequence[str]], data_key_arn: str,
                 region: str) -> None:
        super().__init__(scope, id)
        empty = sorted(namespace for namespace, arns in secret_arns.items() if not arns)
        if empty:
            raise ValueError(f"namespaces {', '.join(empty)} read no secret: give them no secret reader role")
        # A local keeps the condition keys free of quoted literals, so each trust policy stays parseable JSON.
        issuer = TerraformLocal(self, "oidc-issuer-host", Fn.replace(oidc_issuer_url, "https://", "")).as_string
        self.roles: dict[str, IamRole] = {}
        for namespace, arns in sorted(secret_arns.items()):
            name = f"{cluster_name}-secrets-{namespace}"
            trust = policy_document([{
                "Effect": "Allow", "Principal": {"Federated": oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {f"{issuer}:sub": reader_subject(namespace),
                                               f"{issuer}:aud": STS_AUDIENCE}}}])
            role = IamRole(self, namespace, name=name, assume_role_policy=trust,
                           description=f"External Secrets reads the secrets of namespace {namespace}",
                           tags={"kubernetes-namespace": namespace})
            IamRolePolicy(self, f"{namespace}-policy", name=name, role=role.id, policy=policy_document([
                {"Sid": "ReadTheNamespacesSecrets", "Effect": "Allow",
                 "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                 "Resource": list(arns)},
                {"Sid": "UseTheDataKeyThroughSecretsManager", "Effect": "Allow", "Action": ["kms:Decrypt"],
                 "Resource": [data_key_arn],
                 "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}},
            ]))
            self.roles[namespace] = role
        self.role_arns = {namespace: role.arn for namespace, role in self.roles.items()}
