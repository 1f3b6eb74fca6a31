"""``<env>-delivery``: ECR repositories, the pull-through cache of upstream images and the GitHub Actions identities
of the environment's account."""

from __future__ import annotations

from cdktf import TerraformOutput
from cdktf_cdktf_provider_aws.codeconnections_connection import CodeconnectionsConnection
from constructs import Construct

from modules.common.layer_stack import LayerStack
from modules.delivery.github_delivery import Delivery
from modules.delivery.pull_through_cache import PullThroughCache
from platform_config.github_settings import images_environment_name, plan_subject
from platform_config.models import Environment


class DeliveryStack(LayerStack):
    """Delivery into the environment's account: ECR repositories for the platform's images, the pull-through cache
    rules upstream images are pulled through, and the identities of the GitHub Actions workflows. It reads no
    other layer and is applied first (by hand, once, to bootstrap)."""

    def __init__(self, scope: Construct, *, environment: Environment) -> None:
        super().__init__(scope, environment=environment, layer="delivery")
        env, settings, backend = environment, environment.delivery, environment.state_backend
        self.delivery = Delivery(
            self, "delivery", github_repository=settings.github_repository, account_id=env.account_id,
            region=env.region, state_bucket=backend.bucket, state_key_prefix=f"{backend.key_prefix}/{env.name}",
            deploy_environments=settings.deploy_environments or [env.name],
            untagged_expiry_days=settings.untagged_image_expiry_days, tagged_images_kept=settings.tagged_images_kept,
            oidc_provider_arn=settings.github_oidc_provider_arn, state_key_arn=backend.kms_key_arn,
            plan_subjects=[plan_subject(env)], image_push_environment=images_environment_name(env),
            kms_deletion_window_days=env.cluster.kms_deletion_window_days,
            secret_recovery_window_days=env.data.secret_recovery_window_days,
            prevent_destroy=env.protection.prevent_destroy)
        # Upstream images reach the nodes through these rules (the references in the in-cluster stacks name them).
        self.pull_through_cache = PullThroughCache(self, "pull-through-cache")
        # CodeBuild's in-VPC runners reach GitHub through this connection. It is created PENDING: someone with
        # admin rights on the repository's organization authorizes it once in the console (README, first deploy).
        self.github_connection = CodeconnectionsConnection(
            self, "github-connection", name=f"{env.cluster_name}-github", provider_type="GitHub")
        TerraformOutput(self, "github_connection_arn", value=self.github_connection.arn)
        TerraformOutput(self, "repository_urls",
                        value={name: r.repository_url for name, r in self.delivery.repositories.items()})
        TerraformOutput(self, "plan_role_arn", value=self.delivery.plan_role.arn)
        TerraformOutput(self, "deploy_role_arns",
                        value={name: role.arn for name, role in self.delivery.deploy_roles.items()})
        TerraformOutput(self, "image_push_role_arn", value=self.delivery.image_push_role.arn)
        TerraformOutput(self, "gitops_pull_request_role_arn", value=self.delivery.gitops_pull_request_role.arn)
        TerraformOutput(self, "gitops_app_secret_arn", value=self.delivery.gitops_app_secret.arn)
