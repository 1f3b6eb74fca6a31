"""No policy pairs iam:PassRole on any role with an action that starts compute.

Whoever may pass any role to EC2, Lambda, ECS, Glue, SageMaker, CloudFormation, CodeBuild or EKS runs code as that
role: with the account's most powerful role it is the whole account. CKV_AWS_286/287 look for the pair in
``aws_iam_policy_document`` data sources; cdktf writes policies as JSON text (the gate parses it), and the pair
may be spread over two statements.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories
from plat_common import PlatformCheck, as_list, policy_document

POLICY_TYPES = ["aws_iam_role_policy", "aws_iam_policy", "aws_iam_user_policy", "aws_iam_group_policy"]
PASS_ROLE = "iam:passrole"
#: Actions that start compute with a role passed to them (the classic escalation paths).
COMPUTE_ACTIONS = (
    "ec2:runinstances", "ec2:requestspotinstances", "ec2:createlaunchtemplate", "ec2:createlaunchtemplateversion",
    "autoscaling:createlaunchconfiguration", "autoscaling:createautoscalinggroup", "lambda:createfunction",
    "lambda:updatefunctionconfiguration", "ecs:registertaskdefinition", "ecs:runtask", "ecs:starttask",
    "ecs:createservice", "batch:submitjob", "glue:createdevendpoint", "glue:updatedevendpoint", "glue:createjob",
    "sagemaker:createnotebookinstance", "sagemaker:createtrainingjob", "sagemaker:createprocessingjob",
    "cloudformation:createstack", "cloudformation:updatestack", "codebuild:createproject",
    "codebuild:updateproject", "datapipeline:createpipeline", "eks:createnodegroup", "eks:createcluster")


def _allows(statement: dict[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not any(fnmatch.fnmatchcase(action, str(a).lower()) for a in as_list(statement["NotAction"]))
    return any(fnmatch.fnmatchcase(action, str(a).lower()) for a in as_list(statement.get("Action")))


def _any_role(statement: dict[str, Any]) -> bool:
    """A resource that matches every role: ``*``, ``arn:aws:iam::*:role/*``, ``arn:aws:iam::<acct>:role/*``."""
    if "NotResource" in statement:
        return True
    for resource in (str(r).strip() for r in as_list(statement.get("Resource"))):
        if resource == "*" or (resource.startswith("arn:") and resource.split(":", 5)[-1] in ("*", "role/*")):
            return True
    return False


class NoPassRoleWithCompute(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_27", name="IAM policies never pair iam:PassRole on any role with actions that start compute",
            why="passing any role to new compute runs code with that role's permissions: a path from a narrow role "
                "to every role of the account, administrators included",
            resources=POLICY_TYPES, categories=[CheckCategories.IAM])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        policy = policy_document(conf)
        if policy is None:
            return  # CKV_PLAT_22 refuses a role policy that is not literal JSON
        allows = [s for s in as_list(policy.get("Statement")) if isinstance(s, dict) and s.get("Effect") == "Allow"]
        pass_any = [s.get("Sid") or f"statement {n}" for n, s in enumerate(allows, start=1)
                    if _allows(s, PASS_ROLE) and _any_role(s)]
        if not pass_any:
            return
        compute = sorted({a for s in allows for a in COMPUTE_ACTIONS if _allows(s, a)})
        if compute:
            yield (f"iam:PassRole on every role ({', '.join(pass_any)}) together with {', '.join(compute[:4])}"
                   f"{' ...' if len(compute) > 4 else ''}")


NoPassRoleWithCompute()
