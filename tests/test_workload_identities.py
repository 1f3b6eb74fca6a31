"""Workload identities: least privilege, every resource named, bound to one service account by Pod Identity."""

import json

import pytest

from platform_config.data_layer import workload_identities
from tests_support import resources

#: Services whose actions must never be granted on "*".
SCOPED_SERVICES = ("s3", "secretsmanager", "kms", "logs")


#: The plan role's configuration reads refresh every bucket, key, secret and log group of the account; they are
#: held to exact actions that read no data by tests/test_plan_role.py (and waived in policies/skips.yaml).
PLAN_CONFIGURATION_READS = "delivery_plan-role-configuration-reads_"


def all_policy_documents(stacks):
    """Every IAM policy document synthesized anywhere (role inline policies), but the plan role's configuration
    reads."""
    for stack_name, stack in stacks.items():
        for address, body in resources(stack, "aws_iam_role_policy").items():
            if not address.startswith(PLAN_CONFIGURATION_READS):
                yield f"{stack_name}: aws_iam_role_policy.{address}", json.loads(body["policy"])


def as_list(value):
    return value if isinstance(value, list) else [value]


def test_no_policy_grants_s3_secretsmanager_kms_or_logs_actions_on_a_wildcard_resource(stacks):
    documents = list(all_policy_documents(stacks))
    assert len(documents) >= 3 * len(workload_identities())
    for where, document in documents:
        for statement in document["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            services = {action.split(":")[0] for action in as_list(statement["Action"])}
            if services & set(SCOPED_SERVICES):
                for resource in as_list(statement["Resource"]):
                    assert "*" not in resource.replace("/*", "").replace(":*", ""), (where, statement)
                    assert resource.startswith("${") or resource.startswith("arn:"), (where, statement)


def role_policy(stack, workload):
    for body in resources(stack, "aws_iam_role_policy").values():
        if body["//"]["metadata"]["path"].endswith(f"/workload-identities/{workload}/role/policy"):
            return json.loads(body["policy"])
    raise AssertionError(f"no policy for {workload}")


def bucket_purposes(stack, statement_resources):
    names = {f"${{aws_s3_bucket.{n}.arn}}": b["bucket"] for n, b in resources(stack, "aws_s3_bucket").items()}
    purposes = set()
    for resource in statement_resources:
        bucket = names[resource.removesuffix("/*")]
        purposes.add(next(p for p in ("raw-data", "artifacts", "logs", "model-registry") if f"-{p}-" in bucket))
    return purposes


@pytest.mark.parametrize(("workload", "readable", "writable"), [
    ("mlflow", {"artifacts", "model-registry"}, {"artifacts", "model-registry"}),
    ("training", {"raw-data", "artifacts", "model-registry"}, {"artifacts", "model-registry"}),
    ("inference", {"model-registry"}, set()),
])
def test_each_role_reads_and_writes_only_its_own_buckets(stacks, workload, readable, writable):
    stack = stacks["prod-data"]
    statements = {s["Sid"]: s for s in role_policy(stack, workload)["Statement"]}
    assert bucket_purposes(stack, statements["ReadItsObjects"]["Resource"]) == readable
    if writable:
        assert bucket_purposes(stack, statements["WriteItsObjects"]["Resource"]) == writable
    else:
        assert "WriteItsObjects" not in statements
        assert statements["UseTheDataKeyThroughS3"]["Action"] == ["kms:Decrypt"]


def test_agents_read_only_their_own_secrets_and_the_external_secrets_controller_reads_none(stacks):
    stack = stacks["prod-data"]
    names = {f"${{aws_secretsmanager_secret.{n}.arn}}": s["name"]
             for n, s in resources(stack, "aws_secretsmanager_secret").items()}
    agents = {s["Sid"]: s for s in role_policy(stack, "agents")["Statement"]}
    assert sorted(names[arn] for arn in agents["ReadItsSecrets"]["Resource"]) == [
        "mlops-prod/agents-llm-api-keys", "mlops-prod/wandb-api-key"]
    assert agents["ReadItsSecrets"]["Action"] == ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    # Each namespace's SecretStore brings its own role (tests/test_namespace_secrets.py): a store without
    # credentials must get nothing from the controller's.
    controller = [p for p in resources(stack, "aws_iam_role_policy").values()
                  if p["//"]["metadata"]["path"].endswith("/workload-identities/external-secrets/role/policy")]
    assert controller == []


def test_log_shipping_writes_only_to_its_log_group(stacks):
    [statement] = role_policy(stacks["prod-data"], "log-shipping")["Statement"]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    assert len(statement["Resource"]) == 2 and statement["Resource"][1].endswith(":*")


def test_each_workload_role_is_bound_to_its_namespace_and_service_account(stacks):
    stack = stacks["prod-data"]
    associations = {(a["namespace"], a["service_account"]): a
                    for a in resources(stack, "aws_eks_pod_identity_association").values()}
    expected = {(i.namespace, i.service_account) for i in workload_identities().values()}
    assert set(associations) == expected
    for association in associations.values():
        assert "cross-stack-reference-input-prod-cluster" in association["cluster_name"]
        role = resources(stack, "aws_iam_role")[association["role_arn"].split(".")[1]]
        trust = json.loads(role["assume_role_policy"])["Statement"][0]
        assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
