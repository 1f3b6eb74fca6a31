"""Service-linked roles the later layers name before anything of theirs would create them."""

from __future__ import annotations

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.iam_service_linked_role import IamServiceLinkedRole
from constructs import Construct

from platform_config.models import Environment

AUTOSCALING_SERVICE = "autoscaling.amazonaws.com"
AUTOSCALING_ROLE_NAME = "AWSServiceRoleForAutoScaling"


class AutoscalingServiceLinkedRole(Construct):
    """The account's Auto Scaling service-linked role, which launches the node groups' instances and so must be
    allowed to use the cluster key for their encrypted volumes.

    The role appears by itself only with the account's first Auto Scaling group, but the cluster key's policy names
    it before any group exists, and KMS refuses a policy naming a missing principal. So this layer, applied before
    the cluster, creates it; an account can hold it once, so an account that already has it says so
    (``account.autoscaling_service_linked_role_exists``) and the role is only named.

    Inputs (keyword-only):
      environment: the validated environment (``account``, ``account_id``, ``protection``).
    Exposes ``arn``: a reference to the created role (so whatever names it is applied after it), or the ARN of
    the account's existing role.
    """

    def __init__(self, scope: Construct, id: str, *, environment: Environment) -> None:
        super().__init__(scope, id)
        if environment.account.autoscaling_service_linked_role_exists:
            self.arn = (f"arn:aws:iam::{environment.account_id}:role/aws-service-role/{AUTOSCALING_SERVICE}/"
                        f"{AUTOSCALING_ROLE_NAME}")
            return
        role = IamServiceLinkedRole(
            self, "role", aws_service_name=AUTOSCALING_SERVICE,
            description="Launches the EKS node groups' instances (created before the cluster key names it)",
            # Other Auto Scaling groups of the account may come to rely on it.
            lifecycle=TerraformResourceLifecycle(prevent_destroy=environment.protection.prevent_destroy))
        self.arn = role.arn
