"""Each controller's IAM policy, as synthesized, grants every action of the policy its maintainers publish for the
pinned chart (platform_config/data/iam/reference/), on matching resources; every place where ours grants less is a
narrowing listed with its reason in that reference file, and no listed narrowing is stale."""

import json
from pathlib import Path

import pytest
import yaml

from iam_evaluation import action_matches, as_list, wildcard_match
from platform_config.helm_values import chart_catalogue
from tests_support import resources

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "platform_config" / "data" / "iam" / "reference"
REFERENCES = sorted(path.stem for path in REFERENCE_DIR.glob("*.yaml"))
ENVIRONMENTS = ["dev", "staging", "prod"]
KINDS = ("condition", "resource", "omitted")


def reference(name):
    return yaml.safe_load((REFERENCE_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


def role_statements(stacks, env_name, namespace, service_account):
    """The statements of the role ``namespace/service_account`` gets (inline policies): through an EKS Pod Identity
    association, or through an OIDC trust whose ``sub`` is that service account."""
    found = []
    subject = f"system:serviceaccount:{namespace}:{service_account}"
    for stack_name, stack in stacks.items():
        if not stack_name.startswith(f"{env_name}-"):
            continue
        role_ids = [association["role_arn"].replace(".arn}", ".id}")
                    for association in resources(stack, "aws_eks_pod_identity_association").values()
                    if (association["namespace"], association["service_account"]) == (namespace, service_account)]
        role_ids += [f"${{aws_iam_role.{address}.id}}" for address, role in resources(stack, "aws_iam_role").items()
                     if any(key.endswith(":sub") and subject in as_list(values)
                            for statement in json.loads(role["assume_role_policy"])["Statement"]
                            for condition in statement.get("Condition", {}).values()
                            for key, values in condition.items())]
        for role_id in role_ids:
            for policy in resources(stack, "aws_iam_role_policy").values():
                if policy["role"] == role_id:
                    found += json.loads(policy["policy"])["Statement"]
    assert found, f"{env_name}: no role with a policy for {namespace}/{service_account}"
    return found


def _in_account(resource, *, region, account_id):
    """A reference ARN with `*` for region and account, in the cluster's own region and account."""
    parts = resource.split(":", 5)
    if len(parts) == 6 and parts[3] == "*" and parts[4] == "*":
        parts[3], parts[4] = region, account_id
    return ":".join(parts)


def _normalized(conditions):
    return {(operator, key, tuple(sorted(str(v) for v in as_list(values))))
            for operator, keys in (conditions or {}).items() for key, values in keys.items()}


def _allows(statement, action):
    return statement["Effect"] == "Allow" and action_matches(statement["Action"], action)


def differences(ours, ref, *, region, account_id):
    """(action, reference resource, kind) for every reference grant ours does not fully cover. Covered: an Allow of
    ours names the action, has a resource pattern matching the reference's resource, and asks no condition the
    reference does not ask too. Otherwise: ``omitted`` when ours never grants the action, ``condition`` when a
    statement covers the resource under a narrower condition, ``resource`` when ours grants it on narrower
    resources only."""
    placeholder = ref.get("secret_placeholder")
    secrets = [r for s in ours if _allows(s, "secretsmanager:GetSecretValue") for r in as_list(s["Resource"])]
    found = []
    for grant in ref["grants"]:
        wanted = _normalized(grant.get("conditions"))
        targets = [(r, [r]) if r != placeholder else (r, secrets) for r in grant["resources"]]
        for action in grant["actions"]:
            granting = [s for s in ours if _allows(s, action)]
            for shown, concrete in targets:
                for resource in concrete:
                    target = _in_account(resource, region=region, account_id=account_id)
                    on_resource = [s for s in granting
                                   if any(wildcard_match(p, target) for p in as_list(s["Resource"]))]
                    if any(_normalized(s.get("Condition")) <= wanted for s in on_resource):
                        continue
                    kind = "omitted" if not granting else "condition" if on_resource else "resource"
                    found.append((action, shown, kind))
    return sorted(set(found))


def unexplained(diffs, narrowings):
    """Differences no narrowing lists (with the same kind), and narrowing entries that explain nothing."""
    def explains(entry, action, resource, kind):
        return (action in entry["actions"] and kind == entry["kind"]
                and ("resources" not in entry or resource in entry["resources"]))

    missing = [d for d in diffs if not any(explains(entry, *d) for entry in narrowings)]
    stale = [(entry["kind"], action) for entry in narrowings for action in entry["actions"]
             if not any(explains(entry, *d) for d in diffs if d[0] == action)]
    return missing, stale


@pytest.mark.parametrize("name", REFERENCES)
def test_every_reference_names_the_pinned_chart_version_and_gives_each_narrowing_a_reason(name):
    ref = reference(name)
    assert ref["chart_version"] == chart_catalogue()[ref["chart"]].version, (
        f"{name}: the reference policy is for chart {ref['chart_version']}; re-read it for the pinned version")
    for entry in ref.get("narrowings", []):
        assert entry["kind"] in KINDS and entry["actions"] and len(entry["reason"]) > 20, entry


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
@pytest.mark.parametrize("name", REFERENCES)
def test_ours_grants_every_reference_action_or_lists_why_not(stacks, environments, env_name, name):
    ref, env = reference(name), environments[env_name]
    ours = role_statements(stacks, env_name, ref["identity"]["namespace"], ref["identity"]["service_account"])
    diffs = differences(ours, ref, region=env.region, account_id=env.account_id)
    missing, stale = unexplained(diffs, ref.get("narrowings", []))
    assert missing == [], f"{name}: ours grants less than the reference here, and no narrowing says why"
    assert stale == [], f"{name}: listed narrowings that are no longer differences"


def test_the_load_balancer_controller_policy_as_it_was_is_caught(stacks, environments):
    """The defect put back: AddTags only on load balancers and target groups, no SetRulePriorities."""
    ref, env = reference("aws-load-balancer-controller"), environments["prod"]
    ours = role_statements(stacks, "prod", "kube-system", "aws-load-balancer-controller")
    old = []
    for statement in ours:
        if statement.get("Sid") == "TagListenersAndRules":
            continue
        actions = [a for a in as_list(statement["Action"]) if a != "elasticloadbalancing:SetRulePriorities"]
        old.append({**statement, "Action": actions})
    missing, _ = unexplained(differences(old, ref, region=env.region, account_id=env.account_id),
                             ref["narrowings"])
    assert ("elasticloadbalancing:SetRulePriorities", "*", "omitted") in missing
    assert {(a, r) for a, r, _ in missing} >= {
        ("elasticloadbalancing:AddTags", "arn:aws:elasticloadbalancing:*:*:listener/app/*/*/*"),
        ("elasticloadbalancing:AddTags", "arn:aws:elasticloadbalancing:*:*:listener-rule/net/*/*/*")}


def test_a_narrowing_by_condition_is_told_apart_from_a_covered_grant():
    ref = {"grants": [{"actions": ["autoscaling:SetDesiredCapacity"], "resources": ["*"]}]}
    broad = [{"Effect": "Allow", "Action": "autoscaling:*", "Resource": "*"}]
    tagged = [{"Effect": "Allow", "Action": ["autoscaling:SetDesiredCapacity"], "Resource": "*",
               "Condition": {"StringEquals": {"aws:ResourceTag/owner": "me"}}}]
    assert differences(broad, ref, region="us-east-1", account_id="1") == []
    assert differences(tagged, ref, region="us-east-1", account_id="1") == [
        ("autoscaling:SetDesiredCapacity", "*", "condition")]
    assert differences([], ref, region="us-east-1", account_id="1") == [
        ("autoscaling:SetDesiredCapacity", "*", "omitted")]
