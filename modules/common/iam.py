"""IAM roles for AWS services and for pods (EKS Pod Identity), with policy documents as readable JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from constructs import Construct

#: The principal EKS Pod Identity assumes roles as; it also tags the session with the pod's identity.
POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"


def policy_document(statements: Sequence[Mapping]) -> str:
    """A policy document as JSON text; resource references stay Terraform expressions inside the strings."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


def aws_managed_policy(name: str) -> str:
    return f"arn:aws:iam::aws:policy/{name}"


class ServiceRole(Construct):
    """An IAM role that one AWS service principal assumes.

    Inputs (keyword-only):
      name: the role name (also the base of the construct's resources).
      service: the service principal, e.g. ``eks.amazonaws.com`` or ``pods.eks.amazonaws.com``.
      managed_policies: AWS managed policy names to attach (default none).
      inline_policy: statements of the role's own policy (default none).
      tag_session: also allow ``sts:TagSession`` (default: only for Pod Identity, which needs it).
    Exposes ``role`` (the ``aws_iam_role``), ``policy`` (its inline ``aws_iam_role_policy``, or None) and ``arn``.
    """

    def __init__(self, scope: Construct, id: str, *, name: str, service: str,
                 managed_policies: Sequence[str] = (), inline_policy: Sequence[Mapping] = (),
                 tag_session: bool | None = None) -> None:
        super().__init__(scope, id)
        actions = ["sts:AssumeRole"]
        if tag_session if tag_session is not None else service == POD_IDENTITY_SERVICE:
            actions.append("sts:TagSession")
        trust = policy_document([{"Effect": "Allow", "Principal": {"Service": service}, "Action": actions}])
        self.role = IamRole(self, "role", name=name, assume_role_policy=trust)
        self.arn = self.role.arn
        for policy in managed_policies:
            IamRolePolicyAttachment(self, policy, role=self.role.name, policy_arn=aws_managed_policy(policy))
        self.policy = None
        if inline_policy:
            self.policy = IamRolePolicy(self, "policy", name=name, role=self.role.id,
                                        policy=policy_document(inline_policy))
