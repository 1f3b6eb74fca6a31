"""Delivery for one environment's account: ECR repositories for the platform's images, and the identities GitHub
Actions uses (an OIDC identity provider and three kinds of roles, each trusted by ONE repository only).

The roles, by what may assume them: the ``sub`` claim of the GitHub token, in the format of the subject template
the ``github`` stack sets on the repository (``platform_config/github_oidc.py``: repository, context, ref and the
workflow file), matched exactly but for a pull request's number:

- ``plan``: read-only, from the plan workflow of pull requests of the repository (context ``pull_request``), or,
  where the state must wait for reviewers, only from its jobs in a protected GitHub environment (context
  ``environment:plan-<env>``). It reads what ``terraform plan`` of our resource types reads
  (``platform_config/data/plan_role_reads.yaml``: configuration, never object contents or secret values) and the
  Terraform state under the environment's key prefix, decrypted with the state key; plans run with
  ``-lock=false``, so the role needs no write access at all.
- ``deploy`` (one per GitHub environment): from the deploy workflow's jobs that name that GitHub environment
  (context ``environment:<env>``), run from main, so the environment's protection rules (required reviewers,
  deployment branches) decide who deploys. Reads and writes the state; ``AdministratorAccess`` by default, because
  the stacks create IAM roles, KMS keys, VPCs and EKS clusters.
- ``image-push``: from the images workflow's jobs in the account's ``images-<env>`` GitHub environment, run from
  main (prod-tier environments wait there for reviewers); push and pull on the platform's repositories only.
  ``ecr:GetAuthorizationToken`` is the one action with resource ``*`` (it has no resource-level permissions).
- ``gitops-pull-request``: from the images workflow's jobs run from main that name no GitHub environment; reads
  one secret, the GitHub App the image workflow uses to write new image tags into the GitOps repository (a pull
  request, or a commit where the environment follows automatically), and nothing else: no AWS resource is changed
  by it.

Role names are fixed (``<name_prefix>-github-plan``, ``<name_prefix>-github-deploy-<env>``,
``<name_prefix>-github-image-push``) and each role carries the tag ``github-actions-role`` with its kind, so
the workflows find their role in the synthesized stack instead of in hand-kept repository variables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum

from cdktf import TerraformResourceLifecycle, Token
from cdktf_cdktf_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktf_cdktf_provider_aws.ecr_repository import (
    EcrRepository,
    EcrRepositoryEncryptionConfiguration,
    EcrRepositoryImageScanningConfiguration,
)
from cdktf_cdktf_provider_aws.iam_openid_connect_provider import IamOpenidConnectProvider
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.secretsmanager_secret import SecretsmanagerSecret
from constructs import Construct

from modules.common.iam import aws_managed_policy, policy_document
from modules.common.kms import EncryptionKey
from platform_config.github_oidc import MAIN_REF, PULL_REQUEST_REF, WorkflowSubject
from platform_config.github_settings import WORKFLOW_OF, GithubEnvironmentKind
from platform_config.images import GITOPS_APP_SECRET, platform_images
from platform_config.plan_reads import plan_reads

#: The images the platform builds (``images/<name>/Dockerfile``; platform_config/data/platform_images.yaml), one
#: ECR repository each.
PLATFORM_IMAGES = tuple(platform_images())

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
#: The audience configure-aws-credentials asks GitHub for (its default).
STS_AUDIENCE = "sts.amazonaws.com"
#: The tag whose value names a role's kind; the workflows look roles up by it.
ROLE_KIND_TAG = "github-actions-role"

#: Pushing needs the layer upload actions; pulling (for build caches and base layers kept in the same repository)
#: and DescribeImages (to skip a tag that already exists: tags are immutable) are on the same repositories.
IMAGE_PUSH_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CompleteLayerUpload",
                      "ecr:DescribeImages", "ecr:GetDownloadUrlForLayer", "ecr:InitiateLayerUpload",
                      "ecr:PutImage", "ecr:UploadLayerPart")

_GITHUB_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
# https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html (repositoryName)
_ECR_NAME = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_GITHUB_ENVIRONMENT = re.compile(r"^[A-Za-z0-9._-]{1,255}$")
#: The tag naming the GitHub environment a deploy or image-push role trusts.
GITHUB_ENVIRONMENT_TAG = "github-environment"
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_IAM_ROLE_NAME_MAX = 64


class GithubRole(StrEnum):
    """The kinds of role GitHub Actions assumes (the value of the ``github-actions-role`` tag)."""

    PLAN = "plan"
    DEPLOY = "deploy"
    IMAGE_PUSH = "image-push"
    GITOPS_PULL_REQUEST = "gitops-pull-request"


def github_trust_policy(provider_arn: str, repository: str, subjects: Sequence[WorkflowSubject]) -> str:
    """A trust policy letting GitHub Actions tokens of ``repository`` whose ``sub`` is the claim of one of
    ``subjects`` assume the role through the OIDC ``provider_arn``.

    Exact claims go in a ``StringEquals`` statement, pull-request claims (whose number is a wildcard) in a
    ``StringLike`` statement of their own: conditions in one statement are ANDed, so mixing them there would match
    nothing.
    """
    exact = [s.claim(repository) for s in subjects if not s.is_pattern]
    patterns = [s.claim(repository) for s in subjects if s.is_pattern]
    audience = {f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE}
    statements = []
    for operator, values in (("StringEquals", exact), ("StringLike", patterns)):
        if not values:
            continue
        condition: dict[str, dict] = {"StringEquals": dict(audience)}
        condition.setdefault(operator, {})[f"{GITHUB_OIDC_HOST}:sub"] = values
        statements.append({"Effect": "Allow", "Principal": {"Federated": provider_arn},
                           "Action": "sts:AssumeRoleWithWebIdentity", "Condition": condition})
    return policy_document(statements)


def lifecycle_policy(untagged_expiry_days: int, tagged_images_kept: int) -> str:
    """The ECR lifecycle policy: untagged images expire ``untagged_expiry_days`` after push, and only the
    ``tagged_images_kept`` most recent tagged images are kept."""
    return json.dumps({"rules": [
        {"rulePriority": 1, "description": f"Expire untagged images {untagged_expiry_days} days after push",
         "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                       "countNumber": untagged_expiry_days},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "description": f"Keep the {tagged_images_kept} most recent tagged images",
         "selection": {"tagStatus": "tagged", "tagPatternList": ["*"], "countType": "imageCountMoreThan",
                       "countNumber": tagged_images_kept},
         "action": {"type": "expire"}},
    ]}, indent=2)


class Delivery(Construct):
    """ECR repositories and the GitHub Actions identities of one environment's AWS account.

    Inputs (keyword-only):
      github_repository: the one repository whose workflows may assume the roles, ``<owner>/<name>`` with the
        exact case GitHub shows (IAM compares the ``sub`` claim case-sensitively).
      account_id, region: the environment's account (12 digits) and region.
      state_bucket, state_key_prefix: where the environment's Terraform state lives; the plan role reads and the
        deploy roles read and write ``<state_key_prefix>/*`` in that bucket.
      deploy_environments: GitHub environments that deploy into this account; one deploy role each, trusted by
        the jobs of ``deploy_workflow`` run from main in that environment.
      image_push_environment: the GitHub environment of the jobs of ``images_workflow`` that push images into
        this account (run from main).
      repository_names: ECR repositories to create (default ``PLATFORM_IMAGES``).
      name_prefix: prefix of the role names and the KMS alias (default ``mlops-platform``).
      kms_key_arn: customer-managed key that encrypts the repositories (default: a new rotating key,
        ``alias/<name_prefix>-ecr``).
      kms_deletion_window_days: deletion window of that new key, 7-30 (default 30).
      untagged_expiry_days: untagged images expire this many days after push, >= 1 (default 7).
      tagged_images_kept: the most recent tagged images kept per repository, >= 1 (default 50). Deploy images
        recent enough to stay within it: an expired image cannot be pulled by a rescheduled pod.
      prevent_destroy: ``prevent_destroy`` on the repositories and the new key (default True).
      oidc_provider_arn: an existing GitHub OIDC provider of the account (default: create one; an account can
        have only one provider per URL).
      plan_subjects: jobs that may assume the plan role (default: the plan workflow's jobs of any pull request
        that name no GitHub environment).
      deploy_workflow, images_workflow: workflow files of the deploy and image jobs (default ``deploy.yml``,
        ``images.yml``).
      plan_read_actions: the exact read actions the plan role has on ``*`` (default: every action of
        ``platform_config/data/plan_role_reads.yaml``); no wildcard, no managed policy.
      deploy_managed_policies: AWS managed policies of the deploy roles (default ``("AdministratorAccess",)``).
      state_key_arn: the customer-managed KMS key of the state (default none: SSE-S3, for accounts not yet
        bootstrapped with one; the platform's stacks always pass it).
      deploy_session_hours: maximum session of the deploy roles, 1-12 (default 2: a first deploy of a cluster
        with its node groups takes longer than the default hour).
      gitops_app_secret_name: the Secrets Manager secret of the GitHub App that writes image tags into the GitOps
        repository (default ``platform_config.images.GITOPS_APP_SECRET``); created encrypted with the key, never
        given a value here.
      secret_recovery_window_days: recovery window of that secret, 7-30 (default 30).
      tags: tags on the repositories and roles (default none; the provider's default tags still apply).
    Exposes ``repositories`` (name -> ``aws_ecr_repository``), ``key_arn``, ``oidc_provider_arn``, ``plan_role``,
    ``deploy_roles`` (GitHub environment -> ``aws_iam_role``), ``image_push_role``, ``gitops_app_secret`` and
    ``gitops_pull_request_role``.
    """

    def __init__(self, scope: Construct, id: str, *, github_repository: str, account_id: str, region: str,
                 state_bucket: str,
                 state_key_prefix: str, deploy_environments: Sequence[str],
                 repository_names: Sequence[str] = PLATFORM_IMAGES, name_prefix: str = "mlops-platform",
                 kms_key_arn: str | None = None, kms_deletion_window_days: int = 30,
                 untagged_expiry_days: int = 7, tagged_images_kept: int = 50, prevent_destroy: bool = True,
                 image_push_environment: str,
                 oidc_provider_arn: str | None = None,
                 plan_subjects: Sequence[WorkflowSubject] = (
                     WorkflowSubject(workflow=WORKFLOW_OF[GithubEnvironmentKind.PLAN], ref=PULL_REQUEST_REF),),
                 deploy_workflow: str = WORKFLOW_OF[GithubEnvironmentKind.DEPLOY],
                 images_workflow: str = WORKFLOW_OF[GithubEnvironmentKind.IMAGES],
                 plan_read_actions: Sequence[str] | None = None,
                 deploy_managed_policies: Sequence[str] = ("AdministratorAccess",),
                 state_key_arn: str | None = None, deploy_session_hours: int = 2,
                 gitops_app_secret_name: str = GITOPS_APP_SECRET, secret_recovery_window_days: int = 30,
                 tags: Mapping[str, str] | None = None) -> None:
        super().__init__(scope, id)
        _validate(github_repository=github_repository, account_id=account_id, state_bucket=state_bucket,
                  state_key_prefix=state_key_prefix, deploy_environments=deploy_environments,
                  repository_names=repository_names, name_prefix=name_prefix, kms_key_arn=kms_key_arn,
                  kms_deletion_window_days=kms_deletion_window_days, untagged_expiry_days=untagged_expiry_days,
                  tagged_images_kept=tagged_images_kept, plan_subjects=plan_subjects,
                  image_push_environment=image_push_environment, state_key_arn=state_key_arn,
                  plan_read_actions=plan_read_actions, deploy_session_hours=deploy_session_hours,
                  secret_recovery_window_days=secret_recovery_window_days)
        tags = dict(tags or {})
        lifecycle = TerraformResourceLifecycle(prevent_destroy=prevent_destroy)

        if kms_key_arn is None:
            key = EncryptionKey(self, "key", alias=f"{name_prefix}-ecr",
                                description=f"Images in the ECR repositories and the delivery secret of {name_prefix}",
                                account_id=account_id, region=region, deletion_window_days=kms_deletion_window_days,
                                prevent_destroy=prevent_destroy)
            kms_key_arn = key.arn
        self.key_arn = kms_key_arn

        self.repositories: dict[str, EcrRepository] = {}
        for name in repository_names:
            construct_id = f"repository-{name.replace('/', '-')}"
            repository = EcrRepository(
                self, construct_id, name=name, image_tag_mutability="IMMUTABLE", force_delete=False,
                image_scanning_configuration=EcrRepositoryImageScanningConfiguration(scan_on_push=True),
                encryption_configuration=[EcrRepositoryEncryptionConfiguration(encryption_type="KMS",
                                                                               kms_key=kms_key_arn)],
                tags=tags or None, lifecycle=lifecycle)
            EcrLifecyclePolicy(self, f"{construct_id}-lifecycle", repository=repository.name,
                               policy=lifecycle_policy(untagged_expiry_days, tagged_images_kept))
            self.repositories[name] = repository

        if oidc_provider_arn is None:
            provider = IamOpenidConnectProvider(self, "github-oidc", url=GITHUB_OIDC_URL,
                                                client_id_list=[STS_AUDIENCE], tags=tags or None)
            oidc_provider_arn = provider.arn
        self.oidc_provider_arn = oidc_provider_arn

        state_objects = f"arn:aws:s3:::{state_bucket}/{state_key_prefix}/*"
        list_state = {"Sid": "ListTheStateBucket", "Effect": "Allow", "Action": "s3:ListBucket",
                      "Resource": f"arn:aws:s3:::{state_bucket}"}

        self.plan_role = self._role(
            "plan-role", name=f"{name_prefix}-github-plan", kind=GithubRole.PLAN,
            description=f"Read-only Terraform plans from pull requests of {github_repository}",
            trust=github_trust_policy(oidc_provider_arn, github_repository, plan_subjects),
            managed_policies=(), tags=tags,
            statements=[list_state,
                        {"Sid": "ReadTheState", "Effect": "Allow", "Action": "s3:GetObject",
                         "Resource": state_objects},
                        *_decrypt_state(state_key_arn, write=False)])

        # A policy of its own: these reads cover every bucket, key, secret and log group of the account (a plan
        # refreshes them all), while the state grants beside them stay scoped and checked.
        IamRolePolicy(self, "plan-role-configuration-reads", name=f"{name_prefix}-github-plan-configuration-reads",
                      role=self.plan_role.id, policy=policy_document([
                          {"Sid": "ReadWhatPlansRefresh", "Effect": "Allow",
                           "Action": sorted(plan_read_actions or plan_reads().actions()), "Resource": "*"}]))

        self.deploy_roles: dict[str, IamRole] = {}
        for environment in deploy_environments:
            self.deploy_roles[environment] = self._role(
                f"deploy-role-{environment}", name=f"{name_prefix}-github-deploy-{environment}",
                kind=GithubRole.DEPLOY, description=(f"Terraform apply from the {environment} GitHub environment "
                                                     f"of {github_repository}"),
                trust=github_trust_policy(oidc_provider_arn, github_repository, [WorkflowSubject(
                    workflow=deploy_workflow, ref=MAIN_REF, environment=environment)]),
                managed_policies=deploy_managed_policies, tags={**tags, GITHUB_ENVIRONMENT_TAG: environment},
                max_session_duration=deploy_session_hours * 3600,
                # Kept even beside AdministratorAccess, so a narrower managed policy still leaves state access.
                statements=[list_state,
                            {"Sid": "ReadAndWriteTheStateAndItsLockfiles", "Effect": "Allow",
                             "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                             "Resource": state_objects},
                            *_decrypt_state(state_key_arn, write=True)])

        repository_arns = [repository.arn for repository in self.repositories.values()]
        self.image_push_role = self._role(
            "image-push-role", name=f"{name_prefix}-github-image-push", kind=GithubRole.IMAGE_PUSH,
            description=f"Push the platform's images to ECR from {github_repository}",
            trust=github_trust_policy(oidc_provider_arn, github_repository, [WorkflowSubject(
                workflow=images_workflow, ref=MAIN_REF, environment=image_push_environment)]),
            managed_policies=(), tags={**tags, GITHUB_ENVIRONMENT_TAG: image_push_environment},
            statements=[
                # GetAuthorizationToken has no resource-level permissions: "*" is the only resource it accepts.
                {"Sid": "LogInToTheRegistry", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken",
                 "Resource": "*"},
                {"Sid": "PushThePlatformsImages", "Effect": "Allow", "Action": list(IMAGE_PUSH_ACTIONS),
                 "Resource": repository_arns},
            ])

        self.gitops_app_secret = SecretsmanagerSecret(
            self, "gitops-app-secret", name=gitops_app_secret_name, kms_key_id=kms_key_arn,
            description=("GitHub App that writes new image tags into the GitOps repository: JSON with client_id and "
                         "private_key; installed on that repository only, with contents and pull-request access"),
            recovery_window_in_days=secret_recovery_window_days, tags=tags or None, lifecycle=lifecycle)
        self.gitops_pull_request_role = self._role(
            "gitops-pull-request-role", name=f"{name_prefix}-github-gitops-pull-request",
            kind=GithubRole.GITOPS_PULL_REQUEST,
            description=f"Read the GitOps GitHub App secret from image workflows of {github_repository}",
            trust=github_trust_policy(oidc_provider_arn, github_repository,
                                      [WorkflowSubject(workflow=images_workflow, ref=MAIN_REF)]),
            managed_policies=(), tags=tags,
            statements=[
                {"Sid": "ReadTheGitopsAppSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                 "Resource": self.gitops_app_secret.arn},
                {"Sid": "DecryptItThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt",
                 "Resource": kms_key_arn,
                 "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}},
            ])

    def _role(self, id: str, *, name: str, kind: GithubRole, description: str, trust: str,
              managed_policies: Sequence[str], statements: Sequence[Mapping], tags: Mapping[str, str],
              max_session_duration: int | None = None) -> IamRole:
        role = IamRole(self, id, name=name, description=description, assume_role_policy=trust,
                       max_session_duration=max_session_duration, tags={**tags, ROLE_KIND_TAG: kind.value})
        for policy in managed_policies:
            IamRolePolicyAttachment(self, f"{id}-{policy}", role=role.name, policy_arn=aws_managed_policy(policy))
        IamRolePolicy(self, f"{id}-policy", name=name, role=role.id, policy=policy_document(statements))
        return role


def _decrypt_state(state_key_arn: str | None, *, write: bool) -> list[dict]:
    if state_key_arn is None:
        return []
    actions = ["kms:Decrypt", "kms:DescribeKey"] + (["kms:Encrypt", "kms:GenerateDataKey"] if write else [])
    return [{"Sid": "UseTheStateKey", "Effect": "Allow", "Action": actions, "Resource": state_key_arn}]


def _validate(*, github_repository: str, account_id: str, state_bucket: str, state_key_prefix: str,
              deploy_environments: Sequence[str], repository_names: Sequence[str], name_prefix: str,
              kms_key_arn: str | None, kms_deletion_window_days: int, untagged_expiry_days: int,
              tagged_images_kept: int, plan_subjects: Sequence[WorkflowSubject], image_push_environment: str,
              state_key_arn: str | None, deploy_session_hours: int,
              plan_read_actions: Sequence[str] | None, secret_recovery_window_days: int) -> None:
    """Fail fast, naming the value and the limit, before any resource exists."""
    if not _GITHUB_REPOSITORY.match(github_repository) or github_repository.split("/")[1] in (".", ".."):
        raise ValueError(f"github_repository {github_repository!r} must be one repository as '<owner>/<name>' "
                         "(letters, digits, '-', and '.'/'_' in the name; no wildcards)")
    if not re.fullmatch(r"\d{12}", account_id):
        raise ValueError(f"account_id {account_id!r} must be 12 digits")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", state_bucket):
        raise ValueError(f"state_bucket {state_bucket!r} is not an S3 bucket name")
    if not state_key_prefix or state_key_prefix.startswith("/") or state_key_prefix.endswith("/") \
            or "*" in state_key_prefix:
        raise ValueError(f"state_key_prefix {state_key_prefix!r} must be a key prefix without leading or trailing "
                         "'/' and without '*'")
    if not deploy_environments:
        raise ValueError("deploy_environments is empty: list at least one GitHub environment that deploys here")
    for environment in [*deploy_environments, image_push_environment]:
        if not _GITHUB_ENVIRONMENT.match(environment):
            raise ValueError(f"GitHub environment {environment!r} must be a GitHub environment name of letters, "
                             "digits, '.', '_' and '-' (no wildcards)")
    if len(set(deploy_environments)) != len(deploy_environments):
        raise ValueError(f"deploy_environments {list(deploy_environments)} lists an environment twice")
    if not repository_names:
        raise ValueError("repository_names is empty: list at least one ECR repository")
    for name in repository_names:
        if not 2 <= len(name) <= 256 or not _ECR_NAME.match(name):
            raise ValueError(f"repository name {name!r} is not a valid ECR name (lower-case letters and digits, "
                             "separated by '.', '_', '-' or '/'; 2-256 characters)")
    if len(set(repository_names)) != len(repository_names):
        raise ValueError(f"repository_names {list(repository_names)} lists a repository twice")
    longest = max([f"{name_prefix}-github-deploy-{e}" for e in deploy_environments] +
                  [f"{name_prefix}-github-image-push", f"{name_prefix}-github-gitops-pull-request"], key=len)
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name_prefix) or len(longest) > _IAM_ROLE_NAME_MAX:
        raise ValueError(f"name_prefix {name_prefix!r} must be lower-case letters, digits and '-', short enough "
                         f"for role names of at most {_IAM_ROLE_NAME_MAX} characters ({longest!r} has "
                         f"{len(longest)})")
    for field, arn in (("kms_key_arn", kms_key_arn), ("state_key_arn", state_key_arn)):
        if arn is not None and not Token.is_unresolved(arn) and not _KMS_KEY_ARN.match(arn):
            raise ValueError(f"{field} {arn!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)")
    if not 7 <= kms_deletion_window_days <= 30:
        raise ValueError(f"kms_deletion_window_days {kms_deletion_window_days} must be between 7 and 30")
    if not 7 <= secret_recovery_window_days <= 30:
        raise ValueError(f"secret_recovery_window_days {secret_recovery_window_days} must be between 7 and 30")
    if untagged_expiry_days < 1:
        raise ValueError(f"untagged_expiry_days {untagged_expiry_days} must be at least 1")
    if tagged_images_kept < 1:
        raise ValueError(f"tagged_images_kept {tagged_images_kept} must be at least 1")
    if not 1 <= deploy_session_hours <= 12:
        raise ValueError(f"deploy_session_hours {deploy_session_hours} must be between 1 and 12 (the IAM limit)")
    for action in plan_read_actions or ():
        if not re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action):
            raise ValueError(f"plan_read_actions: {action!r} must be one exact action '<service>:<Action>' "
                             "(no wildcard: the plan role reads configuration, never data)")
    if not plan_subjects:
        raise ValueError("plan_subjects is empty: list at least the plan workflow's pull-request jobs")
