"""The delivery construct (modules/delivery/github_delivery.py): ECR repositories and the GitHub Actions identities
of one account.

Synthesized on a small stack of its own (``TerraformStack(Testing.app(), "test")``), not the platform app.
"""

from __future__ import annotations

import json

import pytest

REPOSITORY = "example-org/mlops-platform"
ACCOUNT = "111111111111"
STATE_BUCKET = "mlops-platform-tfstate-111111111111"
OIDC = "token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def cdk():
    """cdktf, the AWS provider and the construct, imported after the lazy provider loader is in place."""
    from modules.provider_loader import install_provider_loader

    install_provider_loader()
    import cdktf
    from cdktf_cdktf_provider_aws.provider import AwsProvider

    import modules.delivery.github_delivery as delivery

    return cdktf, AwsProvider, delivery


def delivery_inputs(**overrides) -> dict:
    return {"github_repository": REPOSITORY, "account_id": ACCOUNT, "region": "us-east-1",
            "state_bucket": STATE_BUCKET, "state_key_prefix": "mlops-platform",
            "deploy_environments": ["dev"], "image_push_environment": "images-dev", **overrides}


def synth_delivery(cdk, **overrides) -> dict:
    cdktf, aws_provider, delivery = cdk
    stack = cdktf.TerraformStack(cdktf.Testing.app(), "test")
    aws_provider(stack, "aws", region="us-east-1")
    delivery.Delivery(stack, "delivery", **delivery_inputs(**overrides))
    return json.loads(cdktf.Testing.synth(stack))


@pytest.fixture(scope="module")
def synthesized(cdk) -> dict:
    return synth_delivery(cdk, deploy_environments=["dev", "dev-canary"])


def claim(context: str, ref: str, workflow: str) -> str:
    """The sub of the repository's subject template (repo, context, ref, job_workflow_ref), spelled out."""
    return (f"repo:{REPOSITORY}:{context}:ref:{ref}:job_workflow_ref:{REPOSITORY}/.github/workflows/{workflow}@{ref}")


def resources(stack: dict, resource_type: str) -> dict[str, dict]:
    return stack.get("resource", {}).get(resource_type, {})


def roles_by_kind(stack: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for role in resources(stack, "aws_iam_role").values():
        found.setdefault(role["tags"]["github-actions-role"], []).append(role)
    return found


def trust_statements(role: dict) -> list[dict]:
    return json.loads(role["assume_role_policy"])["Statement"]


def inline_policy(stack: dict, role_name: str) -> list[dict]:
    [policy] = [p for p in resources(stack, "aws_iam_role_policy").values() if p["name"] == role_name]
    return json.loads(policy["policy"])["Statement"]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# --- identity -----------------------------------------------------------------------------------------------------

def test_the_github_oidc_provider_trusts_the_actions_token_issuer_for_sts(synthesized):
    [provider] = resources(synthesized, "aws_iam_openid_connect_provider").values()
    assert provider["url"] == f"https://{OIDC}"
    assert provider["client_id_list"] == ["sts.amazonaws.com"]


def test_every_role_trusts_only_web_identities_of_that_provider_with_the_sts_audience(synthesized):
    [provider_name] = resources(synthesized, "aws_iam_openid_connect_provider")
    for role in resources(synthesized, "aws_iam_role").values():
        for statement in trust_statements(role):
            assert statement["Principal"] == {
                "Federated": f"${{aws_iam_openid_connect_provider.{provider_name}.arn}}"}
            assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
            assert statement["Condition"]["StringEquals"][f"{OIDC}:aud"] == "sts.amazonaws.com"


def test_the_plan_role_is_assumable_only_from_the_plan_workflow_of_pull_requests_of_the_one_repository(synthesized):
    # A pull request's ref holds its number, the one part not known in advance: the only wildcard, in StringLike.
    [plan] = roles_by_kind(synthesized)["plan"]
    [statement] = trust_statements(plan)
    assert statement["Condition"] == {
        "StringEquals": {f"{OIDC}:aud": "sts.amazonaws.com"},
        "StringLike": {f"{OIDC}:sub": [claim("pull_request", "refs/pull/*/merge", "plan.yml")]}}


def test_each_deploy_role_is_assumable_only_from_its_own_github_environment(synthesized):
    deploy_roles = {r["tags"]["github-environment"]: r for r in roles_by_kind(synthesized)["deploy"]}
    assert set(deploy_roles) == {"dev", "dev-canary"}
    for environment, role in deploy_roles.items():
        assert role["name"] == f"mlops-platform-github-deploy-{environment}"
        [statement] = trust_statements(role)
        assert statement["Condition"]["StringEquals"][f"{OIDC}:sub"] == [
            claim(f"environment:{environment}", "refs/heads/main", "deploy.yml")]
        assert "StringLike" not in statement["Condition"]
        assert role["max_session_duration"] == 7200


def test_the_image_push_role_is_assumable_only_from_its_github_environment_on_main(synthesized):
    [push] = roles_by_kind(synthesized)["image-push"]
    [statement] = trust_statements(push)
    assert push["tags"]["github-environment"] == "images-dev"
    assert statement["Condition"] == {"StringEquals": {
        f"{OIDC}:aud": "sts.amazonaws.com",
        f"{OIDC}:sub": [claim("environment:images-dev", "refs/heads/main", "images.yml")]}}


def test_pull_request_plans_and_exact_subjects_get_statements_of_their_own(cdk):
    """Conditions in one statement are ANDed: an exact sub beside a pattern would match nothing."""
    from platform_config.github_oidc import PULL_REQUEST_REF, WorkflowSubject

    stack = synth_delivery(cdk, plan_subjects=[WorkflowSubject(workflow="plan.yml", ref=PULL_REQUEST_REF),
                                               WorkflowSubject(workflow="plan.yml", ref="refs/heads/main")])
    [plan] = roles_by_kind(stack)["plan"]
    exact, pattern = trust_statements(plan)
    assert exact["Condition"]["StringEquals"][f"{OIDC}:sub"] == [
        claim("ref:refs/heads/main", "refs/heads/main", "plan.yml")]
    assert "StringLike" not in exact["Condition"]
    assert pattern["Condition"]["StringLike"] == {f"{OIDC}:sub": [
        claim("pull_request", "refs/pull/*/merge", "plan.yml")]}
    assert f"{OIDC}:sub" not in pattern["Condition"]["StringEquals"]


def test_roles_have_fixed_names_and_the_kind_tag_the_workflows_look_up(synthesized):
    names = {kind: sorted(r["name"] for r in roles) for kind, roles in roles_by_kind(synthesized).items()}
    assert names == {"plan": ["mlops-platform-github-plan"],
                     "deploy": ["mlops-platform-github-deploy-dev", "mlops-platform-github-deploy-dev-canary"],
                     "image-push": ["mlops-platform-github-image-push"],
                     "gitops-pull-request": ["mlops-platform-github-gitops-pull-request"]}


def test_the_workflow_helpers_read_the_same_tags_the_construct_writes(cdk):
    from tools.synth_diff import pipeline

    _, _, delivery = cdk
    assert pipeline.ROLE_KIND_TAG == delivery.ROLE_KIND_TAG
    assert tuple(kind.value for kind in delivery.GithubRole) == pipeline.ROLE_KINDS


def test_a_synthesized_delivery_stack_gives_the_workflows_their_role_arns(cdk, tmp_path):
    from tools.synth_diff.pipeline import github_role_arn

    cdktf, aws_provider, delivery = cdk
    app = cdktf.App(outdir=str(tmp_path))
    stack = cdktf.TerraformStack(app, "dev-delivery")
    aws_provider(stack, "aws", region="us-east-1", allowed_account_ids=[ACCOUNT])
    delivery.Delivery(stack, "delivery", **delivery_inputs())
    app.synth()
    assert github_role_arn(tmp_path, "dev", "deploy", ["dev"]) == \
        f"arn:aws:iam::{ACCOUNT}:role/mlops-platform-github-deploy-dev"


# --- permissions --------------------------------------------------------------------------------------------------

def test_no_identity_policy_grants_a_wildcard_resource_except_the_plan_reads_and_the_registry_login(synthesized):
    """Key policies are resource policies where "*" means the key itself; the roles' policies are checked here.
    The plan role's reads (configuration reads, listed per resource type) have no narrower resource to name."""
    from platform_config.plan_reads import plan_reads

    any_resource_actions, patterns = [], set()
    for policy in resources(synthesized, "aws_iam_role_policy").values():
        for statement in json.loads(policy["policy"])["Statement"]:
            for resource in as_list(statement["Resource"]):
                if resource == "*":
                    any_resource_actions += as_list(statement["Action"])
                elif "*" in resource:
                    patterns.add(resource)
    assert sorted(any_resource_actions) == sorted(["ecr:GetAuthorizationToken", *plan_reads().actions()])
    assert patterns == {f"arn:aws:s3:::{STATE_BUCKET}/mlops-platform/*"}  # the state objects under the prefix


def test_the_push_role_may_push_only_to_the_platform_repositories(synthesized, cdk):
    _, _, delivery = cdk
    login, push = inline_policy(synthesized, "mlops-platform-github-image-push")
    assert (login["Action"], login["Resource"]) == ("ecr:GetAuthorizationToken", "*")
    assert push["Action"] == list(delivery.IMAGE_PUSH_ACTIONS)
    assert sorted(push["Resource"]) == sorted(
        f"${{aws_ecr_repository.{name}.arn}}" for name in resources(synthesized, "aws_ecr_repository"))
    assert not [a for a in resources(synthesized, "aws_iam_role_policy_attachment").values()
                if "image-push-role" in a["role"]]  # no managed policy widens it


def test_the_plan_role_reads_configuration_and_only_reads_the_state_under_its_prefix(synthesized):
    statements = {s["Sid"]: s for s in inline_policy(synthesized, "mlops-platform-github-plan")}
    assert statements["ReadTheState"] == {"Sid": "ReadTheState", "Effect": "Allow", "Action": "s3:GetObject",
                                          "Resource": f"arn:aws:s3:::{STATE_BUCKET}/mlops-platform/*"}
    assert statements["ListTheStateBucket"]["Resource"] == f"arn:aws:s3:::{STATE_BUCKET}"
    assert not [a for a in resources(synthesized, "aws_iam_role_policy_attachment").values()
                if "plan-role" in a["role"]]  # no managed policy: ReadOnlyAccess would read object and secret data


def test_the_deploy_role_reads_and_writes_the_state_and_its_lockfiles(synthesized):
    statements = {s["Sid"]: s for s in inline_policy(synthesized, "mlops-platform-github-deploy-dev")}
    assert statements["ReadAndWriteTheStateAndItsLockfiles"]["Action"] == [
        "s3:GetObject", "s3:PutObject", "s3:DeleteObject"]


# --- repositories -------------------------------------------------------------------------------------------------

def test_there_is_one_repository_per_platform_image(synthesized, cdk):
    _, _, delivery = cdk
    names = sorted(r["name"] for r in resources(synthesized, "aws_ecr_repository").values())
    assert names == sorted(delivery.PLATFORM_IMAGES)


def test_repositories_have_immutable_tags_scan_on_push_and_a_rotating_customer_managed_key(synthesized):
    [(key_name, key)] = resources(synthesized, "aws_kms_key").items()
    assert key["enable_key_rotation"] is True
    for repository in resources(synthesized, "aws_ecr_repository").values():
        assert repository["image_tag_mutability"] == "IMMUTABLE"
        assert repository["image_scanning_configuration"] == {"scan_on_push": True}
        assert repository["encryption_configuration"] == [
            {"encryption_type": "KMS", "kms_key": f"${{aws_kms_key.{key_name}.arn}}"}]
        assert repository["force_delete"] is False
        assert repository["lifecycle"] == {"prevent_destroy": True}


def test_lifecycle_policies_expire_untagged_images_and_keep_the_latest_tagged_ones(synthesized):
    policies = resources(synthesized, "aws_ecr_lifecycle_policy").values()
    assert len(policies) == len(resources(synthesized, "aws_ecr_repository"))
    for policy in policies:
        untagged, tagged = json.loads(policy["policy"])["rules"]
        assert untagged["selection"] == {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                         "countUnit": "days", "countNumber": 7}
        assert tagged["selection"] == {"tagStatus": "tagged", "tagPatternList": ["*"],
                                       "countType": "imageCountMoreThan", "countNumber": 50}
        assert untagged["action"] == tagged["action"] == {"type": "expire"}


def test_an_existing_key_and_oidc_provider_are_used_instead_of_new_ones(cdk):
    key = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    provider = "arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com"
    stack = synth_delivery(cdk, kms_key_arn=key, oidc_provider_arn=provider, prevent_destroy=False,
                           repository_names=["agents/crewai"], untagged_expiry_days=3, tagged_images_kept=10)
    assert resources(stack, "aws_kms_key") == {}
    assert resources(stack, "aws_iam_openid_connect_provider") == {}
    [repository] = resources(stack, "aws_ecr_repository").values()
    assert repository["encryption_configuration"][0]["kms_key"] == key
    assert repository["lifecycle"] == {"prevent_destroy": False}
    [policy] = resources(stack, "aws_ecr_lifecycle_policy").values()
    assert [r["selection"]["countNumber"] for r in json.loads(policy["policy"])["rules"]] == [3, 10]
    for role in resources(stack, "aws_iam_role").values():
        assert {s["Principal"]["Federated"] for s in trust_statements(role)} == {provider}


# --- validation ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("overrides", "message"), [
    ({"github_repository": "example-org"}, "github_repository 'example-org' must be one repository"),
    ({"github_repository": "example-org/*"}, "github_repository 'example-org/\\*' must be one repository"),
    ({"deploy_environments": []}, "deploy_environments is empty"),
    ({"deploy_environments": ["prod*"]}, "GitHub environment 'prod\\*' must be a GitHub environment name"),
    ({"image_push_environment": "images:prod"}, "GitHub environment 'images:prod' must be a GitHub environment"),
    ({"repository_names": ["Agents/CrewAI"]}, "repository name 'Agents/CrewAI' is not a valid ECR name"),
    ({"repository_names": ["agents/crewai", "agents/crewai"]}, "lists a repository twice"),
    ({"plan_subjects": []}, "plan_subjects is empty"),
    ({"kms_key_arn": "alias/ecr"}, "kms_key_arn 'alias/ecr' is not a KMS key ARN"),
    ({"untagged_expiry_days": 0}, "untagged_expiry_days 0 must be at least 1"),
    ({"tagged_images_kept": 0}, "tagged_images_kept 0 must be at least 1"),
    ({"deploy_session_hours": 13}, "deploy_session_hours 13 must be between 1 and 12"),
    ({"plan_read_actions": ["s3:Get*"]}, "plan_read_actions: 's3:Get\\*' must be one exact action"),
    ({"state_key_prefix": "mlops-platform/"}, "state_key_prefix 'mlops-platform/' must be a key prefix"),
    ({"name_prefix": "x" * 60}, "role names of at most 64 characters"),
])
def test_invalid_inputs_are_refused_with_the_value_and_the_limit(cdk, overrides, message):
    cdktf, _, delivery = cdk
    stack = cdktf.TerraformStack(cdktf.Testing.app(), "invalid")
    with pytest.raises(ValueError, match=message):
        delivery.Delivery(stack, "delivery", **delivery_inputs(**overrides))
