"""The account's ECR pull-through cache: one rule per upstream registry the platform's images come from
(``platform_config/data/pull_through_cache.yaml``), so the nodes pull upstream images from ECR in their own region
(no Docker Hub rate limit, no dependency on an upstream being up when a node scales from zero)."""

from __future__ import annotations

from collections.abc import Mapping

from cdktf_cdktf_provider_aws.data_aws_secretsmanager_secret import DataAwsSecretsmanagerSecret
from cdktf_cdktf_provider_aws.ecr_pull_through_cache_rule import EcrPullThroughCacheRule
from constructs import Construct

from platform_config.images import PullThroughRule, pull_through_rules

#: Secrets Manager names ECR accepts as pull-through credentials (CreatePullThroughCacheRule, credentialArn).
CREDENTIAL_PREFIX = "ecr-pullthroughcache/"


class PullThroughCache(Construct):
    """Pull-through cache rules of one account and region.

    Inputs (keyword-only):
      rules: upstream registry host -> rule (default: every rule of pull_through_cache.yaml).
    A registry that requires authentication (Docker Hub, GitHub Container Registry) names a Secrets Manager secret
    whose name starts with ``ecr-pullthroughcache/``. The secret is looked up, not created: ECR reads its value when
    the rule is created, and a value given to Terraform would be kept in the state. It is made by hand once per
    account (README, "Supply chain"); a plan without it stops naming the missing secret.
    Exposes ``rules`` (prefix -> ``aws_ecr_pull_through_cache_rule``).
    """

    def __init__(self, scope: Construct, id: str, *,
                 rules: Mapping[str, PullThroughRule] | None = None) -> None:
        super().__init__(scope, id)
        rules = pull_through_rules() if rules is None else rules
        self.rules: dict[str, EcrPullThroughCacheRule] = {}
        for rule in rules.values():
            credential_arn = None
            if rule.credential is not None:
                if not rule.credential.startswith(CREDENTIAL_PREFIX):
                    raise ValueError(f"pull-through credential {rule.credential!r} of {rule.host}: ECR takes only "
                                     f"secrets named {CREDENTIAL_PREFIX}<name>")
                credential_arn = DataAwsSecretsmanagerSecret(self, f"{rule.prefix}-credential",
                                                             name=rule.credential).arn
            self.rules[rule.prefix] = EcrPullThroughCacheRule(
                self, f"rule-{rule.prefix}", ecr_repository_prefix=rule.prefix,
                upstream_registry_url=rule.upstream_url, credential_arn=credential_arn)
