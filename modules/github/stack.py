"""``github``: the repository's GitHub settings, one stack for every environment (one repository delivers them all).

It manages what the workflows and the AWS roles rely on: the GitHub environments the jobs run in (their reviewers
and deployment branches), the OIDC subject template whose ``sub`` format the roles of every ``<env>-delivery`` stack
trust (``platform_config/github_oidc.py``), and the protection of main and of the branch prod's Argo CD follows.

The provider reads its token from ``GITHUB_TOKEN`` (never from code or state): a token of a repository
administrator (fine-grained: Administration and Environments write on the repositories, Members read on the
organization). The state lives in the state bucket of ``state_environment`` (``platform_config/data/github.yaml``).
"""

from __future__ import annotations

import re

from cdktf import S3Backend, TerraformStack, Token
from cdktf_cdktf_provider_github.actions_repository_oidc_subject_claim_customization_template import (
    ActionsRepositoryOidcSubjectClaimCustomizationTemplate,
)
from cdktf_cdktf_provider_github.branch_protection import (
    BranchProtection,
    BranchProtectionRequiredPullRequestReviews,
    BranchProtectionRequiredStatusChecks,
)
from cdktf_cdktf_provider_github.data_github_team import DataGithubTeam
from cdktf_cdktf_provider_github.provider import GithubProvider
from cdktf_cdktf_provider_github.repository_environment import (
    RepositoryEnvironment,
    RepositoryEnvironmentDeploymentBranchPolicy,
    RepositoryEnvironmentReviewers,
)
from cdktf_cdktf_provider_github.repository_environment_deployment_policy import (
    RepositoryEnvironmentDeploymentPolicy,
)
from constructs import Construct

from platform_config.github_oidc import SUBJECT_CLAIM_KEYS
from platform_config.github_settings import GITHUB_STACK, BranchProtectionSettings, GithubEnvironment, GithubSettings


def _id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", text)


class GithubStack(TerraformStack):
    """The repository's GitHub settings (``settings``: ``platform_config.github_settings.github_settings``)."""

    def __init__(self, scope: Construct, *, settings: GithubSettings) -> None:
        super().__init__(scope, GITHUB_STACK)
        self.settings = settings
        backend = settings.state_environment.state_backend
        S3Backend(self, bucket=backend.bucket, key=f"{backend.key_prefix}/{GITHUB_STACK}.tfstate",
                  region=backend.region, encrypt=True, kms_key_id=backend.kms_key_arn)
        if backend.use_lockfile:
            self.add_override("terraform.backend.s3.use_lockfile", True)
        GithubProvider(self, "github", owner=settings.owner)
        repository = settings.repository_name

        # Every role of the <env>-delivery stacks trusts this format only: with it, a token names the workflow
        # file and the ref it ran from, besides the repository and the GitHub environment.
        ActionsRepositoryOidcSubjectClaimCustomizationTemplate(
            self, "oidc-subject-template", repository=repository, use_default=False,
            include_claim_keys=list(SUBJECT_CLAIM_KEYS))

        slugs = sorted({slug for environment in settings.environments for slug in environment.reviewer_teams})
        self.teams = {slug: DataGithubTeam(self, f"team-{slug}", slug=slug, summary_only=True) for slug in slugs}
        self.environments = {environment.name: self._environment(repository, environment)
                             for environment in settings.environments}
        for protection in settings.branch_protections:
            self._protect(protection)

    def _environment(self, repository: str, environment: GithubEnvironment) -> RepositoryEnvironment:
        reviewers = None
        if environment.reviewer_teams:
            reviewers = [RepositoryEnvironmentReviewers(
                teams=[Token.as_number(self.teams[slug].id) for slug in environment.reviewer_teams])]
        # Custom branch policies: only the named branches (not "protected branches", which would admit any
        # branch someone protects later).
        branch_policy = RepositoryEnvironmentDeploymentBranchPolicy(
            protected_branches=False, custom_branch_policies=True) if environment.deployment_branches else None
        resource = RepositoryEnvironment(
            self, f"environment-{_id(environment.name)}", repository=repository, environment=environment.name,
            reviewers=reviewers, prevent_self_review=bool(reviewers), can_admins_bypass=False,
            deployment_branch_policy=branch_policy)
        for branch in environment.deployment_branches:
            RepositoryEnvironmentDeploymentPolicy(
                self, f"environment-{_id(environment.name)}-branch-{_id(branch)}", repository=repository,
                environment=resource.environment, branch_pattern=branch)
        return resource

    def _protect(self, protection: BranchProtectionSettings) -> BranchProtection:
        name = protection.repository.split("/")[1]
        construct_id = (f"branch-{_id(protection.branch)}" if protection.repository == self.settings.repository
                        else f"branch-{_id(name)}-{_id(protection.branch)}")
        checks = [BranchProtectionRequiredStatusChecks(strict=True, contexts=list(protection.required_checks))] \
            if protection.required_checks else None
        return BranchProtection(
            self, construct_id, repository_id=name, pattern=protection.branch,
            enforce_admins=True, allows_force_pushes=False, allows_deletions=False, required_linear_history=True,
            require_signed_commits=True,
            require_conversation_resolution=True, required_status_checks=checks,
            required_pull_request_reviews=[BranchProtectionRequiredPullRequestReviews(
                required_approving_review_count=protection.required_approvals, dismiss_stale_reviews=True,
                require_last_push_approval=True)])
