"""The custom checkov checks of policies/checks, on the fixtures of tests/fixtures/policies.

The fixtures are a synthesized-folder look-alike (manifest.json and stacks/<topic>/cdk.tf.json in cdktf's JSON
shape, with explicit nulls and both object and list spellings of nested blocks). The gate runs once over them
for the whole module; each test then asserts one check's exact result on every resource of its type: failed for
the resources listed in ``fail``, no result for those outside the check's scope (``not_applicable``), passed for
every other.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from platform_config.models import Tier
from tests_support import namespace_names
from tools.gate.harness import GateRun, run_checkov

FIXTURES = Path(__file__).parent / "fixtures" / "policies"
CHECKS_DIR = Path(__file__).resolve().parent.parent / "policies" / "checks"
JOINED_CHECKS = CHECKS_DIR.parent / "joined_checks.py"
CPU_GROUPS = {"pass_cpu", "fail_no_launch_template", "fail_remote_access"}


@dataclass(frozen=True)
class Case:
    resource_type: str
    fail: set[str]
    not_applicable: set[str] = field(default_factory=set)


CASES = {
    # node groups
    "CKV_PLAT_1": Case("aws_eks_node_group", {"fail_gpu_no_taint", "fail_gpu_wrong_effect"}, CPU_GROUPS),
    "CKV_PLAT_2": Case("aws_eks_node_group", {"fail_gpu_no_sharing_label"}, CPU_GROUPS),
    "CKV_PLAT_3": Case("aws_eks_node_group", {"fail_gpu_cpu_instance", "fail_gpu_no_instance_types"}, CPU_GROUPS),
    "CKV_PLAT_4": Case("aws_eks_node_group", {"fail_no_launch_template"}),
    "CKV_PLAT_5": Case("aws_eks_node_group", {"fail_remote_access"}),
    # launch templates
    "CKV_PLAT_6": Case("aws_launch_template", {"fail_lt_imdsv1", "fail_lt_no_metadata_options"}),
    "CKV_PLAT_7": Case("aws_launch_template", {"fail_lt_hop_limit_2", "fail_lt_no_metadata_options"}),
    "CKV_PLAT_8": Case("aws_launch_template", {"fail_lt_unencrypted", "fail_lt_aws_managed_key", "fail_lt_no_volumes"}),
    "CKV_PLAT_9": Case("aws_launch_template", {"fail_lt_key_name"}),
    # EKS cluster
    "CKV_PLAT_10": Case("aws_eks_cluster", {"fail_cluster_logs"}),
    "CKV_PLAT_11": Case("aws_eks_cluster", {"fail_cluster_no_encryption", "fail_cluster_empty_key"}),
    "CKV_PLAT_12": Case("aws_eks_cluster", {"fail_cluster_config_map"}),
    "CKV_PLAT_13": Case("aws_eks_cluster", {"fail_cluster_public_all", "fail_cluster_public_default"}),
    # Helm releases
    "CKV_PLAT_14": Case("helm_release", {"fail_helm_no_version", "fail_helm_caret_range", "fail_helm_wildcard",
                                         "fail_helm_expression"}),
    "CKV_PLAT_15": Case("helm_release", {"fail_helm_http_repository", "fail_helm_local_chart"}),
    # S3: the bucket policy itself, and each bucket's separate configuration resources (graph checks)
    "CKV_PLAT_16": Case("aws_s3_bucket_policy", {"fail_bucket_policy_without_tls_policy",
                                                 "fail_bucket_policy_expression_policy"}),
    "CKV2_PLAT_1": Case("aws_s3_bucket", {"fail_bucket_bare", "fail_bucket_sse_s3", "fail_bucket_no_kms_key"}),
    "CKV2_PLAT_2": Case("aws_s3_bucket", {"fail_bucket_bare", "fail_bucket_versioning_suspended"}),
    "CKV2_PLAT_3": Case("aws_s3_bucket", {"fail_bucket_bare", "fail_bucket_pab_partial"}),
    # checkov cannot evaluate a policy that is a data source's .json and drops the result: the gate reports the
    # missing result as a problem (test_a_graph_check_without_a_result_fails_the_gate).
    "CKV2_PLAT_4": Case("aws_s3_bucket", {"fail_bucket_bare", "fail_bucket_policy_without_tls"},
                        {"fail_bucket_policy_expression"}),
}


def _fixture_resources(resource_type: str) -> set[str]:
    names = set()
    for path in FIXTURES.glob("stacks/*/cdk.tf.json"):
        names |= set(json.loads(path.read_text()).get("resource", {}).get(resource_type, {}))
    return names


@pytest.fixture(scope="module")
def fixture_run(look_alike_runs) -> GateRun:
    """The gate over tests/fixtures/policies: a folder of the session's one gate run over the look-alikes."""
    run = look_alike_runs.policy_fixtures
    assert run.summary is not None, run.output
    return run


@pytest.fixture(scope="module")
def outcomes(fixture_run: GateRun) -> dict[tuple[str, str], str]:
    """(check id, ``type.name``) -> passed / failed."""
    return {(r["check_id"], r["resource"]): r["outcome"] for r in fixture_run.summary["results"]}


@pytest.mark.parametrize("check_id", sorted(CASES, key=lambda c: (c.startswith("CKV2"), int(c.split("_")[-1]))))
def test_custom_check_gives_the_expected_result_on_every_fixture_resource(check_id, outcomes):
    # GIVEN the fixture resources of the check's type
    case = CASES[check_id]
    names = _fixture_resources(case.resource_type)
    assert case.fail | case.not_applicable <= names, "the case names resources the fixtures lack"
    # WHEN the gate has run over the fixtures, THEN each has exactly the expected result
    expected = {name: None if name in case.not_applicable else "failed" if name in case.fail else "passed"
                for name in names}
    actual = {name: outcomes.get((check_id, f"{case.resource_type}.{name}")) for name in names}
    assert actual == expected


def test_every_custom_check_has_passing_and_failing_fixtures():
    defined = set()
    for path in [*CHECKS_DIR.iterdir(), JOINED_CHECKS]:
        if path.suffix in (".py", ".yaml"):
            defined |= set(re.findall(r"\b(CKV2?_PLAT_\d+)\b", path.read_text()))
    covered = set(CASES) | set(TOPIC_CASES) | {"CKV_PLAT_34"}  # CKV_PLAT_34: test_cni_enforcement_fails_...
    assert defined == covered, "every custom check needs a case here (and fixtures), and only those"
    for check_id, case in CASES.items():
        passing = _fixture_resources(case.resource_type) - case.fail - case.not_applicable
        assert case.fail and passing, f"{check_id} needs at least one passing and one failing fixture"


def test_failures_explain_what_is_wrong(fixture_run):
    details = {(f["check_id"], f["resource"]): f["details"] for f in fixture_run.summary["failures"]}
    assert details[("CKV_PLAT_1", "aws_eks_node_group.fail_gpu_wrong_effect")] == [
        "no taint nvidia.com/gpu with effect NO_SCHEDULE (taints: nvidia.com/gpu:PREFER_NO_SCHEDULE)"]
    assert details[("CKV_PLAT_3", "aws_eks_node_group.fail_gpu_cpu_instance")] == [
        "m6i.large is not an NVIDIA GPU instance type"]
    assert details[("CKV_PLAT_10", "aws_eks_cluster.fail_cluster_logs")] == [
        "enabled_cluster_log_types lacks controllerManager, scheduler"]
    assert details[("CKV_PLAT_6", "aws_launch_template.fail_lt_imdsv1")] == [
        "metadata_options.http_tokens is 'optional', not 'required'"]


def test_a_failure_prints_its_check_id_resource_and_why_it_matters(fixture_run):
    assert "FAILED CKV_PLAT_1 node-groups aws_eks_node_group.fail_gpu_no_taint" in fixture_run.stdout
    assert "why it matters: without the taint any pod lands on GPU nodes" in fixture_run.stdout


def test_a_graph_check_without_a_result_fails_the_gate(fixture_run):
    # GIVEN a bucket whose policy is a data source's .json, which checkov's graph cannot evaluate
    # THEN the gate reports the missing CKV2_PLAT_4 result instead of passing silently
    problems = fixture_run.summary["problems"]
    assert [(p["kind"], p["stack"]) for p in problems] == [("no-result", "s3-buckets")]
    assert "CKV2_PLAT_4" in problems[0]["message"]
    assert "aws_s3_bucket.fail_bucket_policy_expression" in problems[0]["message"]


def test_explicit_nulls_in_fixtures_are_stripped_before_scanning(fixture_run):
    # fail_no_launch_template is written with "launch_template": null; stripped, it is absent and fails.
    notes = {s["name"]: s["notes"] for s in fixture_run.summary["stacks"]}
    assert any("explicit null" in note for note in notes["node-groups"])
    assert fixture_run.exit_code == 1


# ---------------------------------------------------------------------------------------------------------------
# namespaces and the mesh (CKV_PLAT_17, CKV2_PLAT_5) and the data layer (CKV_PLAT_18-23, CKV2_PLAT_6-7)
# Fixture stacks: namespaces, data-layer, stateful-protection. Each resource name says which check it is about:
# fail_mesh_* fail CKV_PLAT_17, fail_deny_* fail CKV2_PLAT_5, and so on; every other resource of the type passes.

NAMESPACE_AND_DATA_CASES = {
    "CKV_PLAT_17": Case("kubernetes_namespace_v1", {
        "fail_mesh_no_annotations", "fail_mesh_inject_true", "fail_mesh_application_opted_out",
        "fail_mesh_unmeshed_unlabelled", "fail_mesh_unauthenticated", "fail_mesh_no_inbound_policy",
        "fail_mesh_injector_excluded"}),
    "CKV2_PLAT_5": Case("kubernetes_namespace_v1", {
        "fail_deny_missing", "fail_deny_ingress_only", "fail_deny_with_rules", "fail_deny_selects_some_pods",
        "fail_deny_named_otherwise", "fail_deny_plain_namespace", "fail_deny_depends_on"}),
    "CKV_PLAT_18": Case("aws_s3_bucket_lifecycle_configuration", {
        "fail_lifecycle_no_noncurrent_expiration", "fail_lifecycle_noncurrent_disabled",
        "fail_lifecycle_noncurrent_for_a_prefix"}),
    "CKV_PLAT_19": Case("aws_s3_bucket_logging", {
        "fail_logging_to_itself", "fail_logging_to_a_literal_bucket", "fail_logging_without_prefix"}),
    "CKV_PLAT_20": Case("aws_db_instance", {"fail_db_aws_managed_key", "fail_db_no_kms_key", "fail_db_unencrypted"},
                        {"replica_db"}),
    "CKV_PLAT_21": Case("aws_db_instance", {"fail_db_password", "fail_db_password_wo",
                                            "fail_db_secret_aws_managed_key"}, {"replica_db"}),
    "CKV_PLAT_22": Case("aws_iam_role_policy", {
        "fail_role_policy_s3_on_star", "fail_role_policy_all_buckets", "fail_role_policy_every_key",
        "fail_role_policy_every_log_group", "fail_role_policy_action_star", "fail_role_policy_service_wildcard",
        "fail_role_policy_not_resource", "fail_role_policy_not_action", "fail_role_policy_expression"}),
    # one type here; every type of the check: test_prevent_destroy_gives_the_expected_result_on_every_stateful_type
    "CKV_PLAT_23": Case("aws_db_instance", {"fail_unprotected_db"}),
    "CKV2_PLAT_6": Case("aws_efs_file_system", {"fail_efs_no_backup_policy", "fail_efs_backup_disabled"}),
    "CKV2_PLAT_7": Case("aws_secretsmanager_secret", {"fail_secret_with_value"}),
}
# The meta-test (test_every_custom_check_has_passing_and_failing_fixtures) reads CASES when it runs.
CASES.update(NAMESPACE_AND_DATA_CASES)


@pytest.mark.parametrize("check_id", sorted(NAMESPACE_AND_DATA_CASES,
                                            key=lambda c: (c.startswith("CKV2"), int(c.split("_")[-1]))))
def test_namespace_and_data_check_gives_the_expected_result_on_every_fixture_resource(check_id, outcomes):
    test_custom_check_gives_the_expected_result_on_every_fixture_resource(check_id, outcomes)


@pytest.fixture(scope="module")
def stack_outcomes(fixture_run: GateRun) -> dict[tuple[str, str, str], str]:
    """(check id, stack, ``type.name``) -> outcome: resource names repeat across fixture stacks."""
    return {(r["check_id"], r["stack"], r["resource"]): r["outcome"] for r in fixture_run.summary["results"]}


def _fixture_addresses(resource_types: tuple[str, ...]) -> dict[tuple[str, str], dict]:
    """(stack, ``type.name``) -> body for every fixture resource of the types."""
    found = {}
    for path in FIXTURES.glob("stacks/*/cdk.tf.json"):
        for resource_type, items in json.loads(path.read_text()).get("resource", {}).items():
            if resource_type in resource_types:
                found |= {(path.parent.name, f"{resource_type}.{name}"): body for name, body in items.items()}
    return found


STATEFUL_TYPES = ("aws_s3_bucket", "aws_efs_file_system", "aws_db_instance", "aws_kms_key",
                  "aws_secretsmanager_secret", "aws_eks_cluster")


def test_prevent_destroy_gives_the_expected_result_on_every_stateful_type(stack_outcomes):
    # GIVEN one protected and one unprotected resource of each stateful type (stateful-protection), the data
    # layer's resources (all protected), and the older fixture stacks' buckets, keys and clusters (no lifecycle)
    addresses = _fixture_addresses(STATEFUL_TYPES)
    unprotected = {("stateful-protection", f"{t}.fail_unprotected_{s}") for t, s in (
        ("aws_s3_bucket", "bucket"), ("aws_efs_file_system", "efs"), ("aws_db_instance", "db"),
        ("aws_kms_key", "key"), ("aws_secretsmanager_secret", "secret"), ("aws_eks_cluster", "cluster"))}
    older = {a for a in addresses if a[0] in ("s3-buckets", "eks-cluster", "launch-templates")}
    assert unprotected <= set(addresses) and len(older) >= 8 + 8 + 3
    assert {a[1].split(".")[0] for a in addresses if a[0] == "stateful-protection" and a not in unprotected} == \
        set(STATEFUL_TYPES), "each stateful type needs a passing fixture"
    # THEN exactly the unprotected ones and the older fixtures fail
    expected = {a: "failed" if a in unprotected | older else "passed" for a in addresses}
    assert {a: stack_outcomes.get(("CKV_PLAT_23", *a)) for a in addresses} == expected


def test_older_namespace_and_network_policy_types_are_checked_too(stack_outcomes):
    address = ("namespaces", "kubernetes_namespace.pass_legacy_application")
    assert stack_outcomes.get(("CKV_PLAT_17", *address)) == "passed"
    assert stack_outcomes.get(("CKV2_PLAT_5", *address)) == "passed"


def test_namespace_and_data_failures_explain_what_is_wrong(fixture_run):
    details = {(f["check_id"], f["resource"]): f["details"] for f in fixture_run.summary["failures"]}
    assert details[("CKV_PLAT_17", "kubernetes_namespace_v1.fail_mesh_no_annotations")] == [
        "annotation linkerd.io/inject is missing: set it to 'enabled' (meshed) or 'disabled' (system namespace "
        "kept out of the mesh)"]
    assert details[("CKV_PLAT_17", "kubernetes_namespace_v1.fail_mesh_application_opted_out")] == [
        "application namespace (Pod Security restricted, config.linkerd.io/default-inbound-policy "
        "all-authenticated) is not meshed: linkerd.io/inject must be 'enabled'"]
    assert details[("CKV_PLAT_19", "aws_s3_bucket_logging.fail_logging_to_itself")] == [
        "the bucket logs into itself (aws_s3_bucket.pass_bucket_raw_data)"]
    assert details[("CKV_PLAT_21", "aws_db_instance.fail_db_password")] == [
        "manage_master_user_password is not true", "password is set: the master password must not pass through "
        "Terraform"]
    assert details[("CKV_PLAT_22", "aws_iam_role_policy.fail_role_policy_every_key")] == [
        "AnyKey: kms:Decrypt on arn:aws:kms:eu-west-1:111111111111:key/*"]
    assert details[("CKV_PLAT_23", "aws_efs_file_system.fail_unprotected_efs")] == [
        "lifecycle.prevent_destroy is False, not true"]


# --- the same checks on the real synth, and on a copy of it with one regression each -------------------------

#: platform_config/cluster_objects.py: the namespaces kept out of the mesh, and those that must be meshed.
SYSTEM_NAMESPACES = {"gpu-operator", "monitoring", "logging", "linkerd", "linkerd-cni", "argocd", "external-secrets",
                     "cert-manager", "observability", "kueue-system", "kubeflow-system"}
APPLICATION_NAMESPACES = {"inference", "training", "agentic", "mlops"}
#: Check -> the resource types it reports on (CKV_PLAT_23: STATEFUL_TYPES).
DATA_CHECK_TYPES = {
    "CKV_PLAT_18": ("aws_s3_bucket_lifecycle_configuration",), "CKV_PLAT_19": ("aws_s3_bucket_logging",),
    "CKV_PLAT_20": ("aws_db_instance",), "CKV_PLAT_21": ("aws_db_instance",), "CKV_PLAT_22": ("aws_iam_role_policy",),
    "CKV_PLAT_23": STATEFUL_TYPES, "CKV2_PLAT_6": ("aws_efs_file_system",),
    "CKV2_PLAT_7": ("aws_secretsmanager_secret",)}
#: policies/skips.yaml: the dev tier's deliberate trade-offs (protection.prevent_destroy and data.efs_backups false).
DEV_TIER_WAIVED = {"CKV_PLAT_23", "CKV2_PLAT_6"}
#: policies/skips.yaml: the plan role's configuration reads cover every bucket, key, secret and log group
#: (tests/test_plan_role.py holds them to exact, data-free actions).
WAIVED_RESOURCES = {("CKV_PLAT_22", "aws_iam_role_policy.delivery_plan-role-configuration-reads_")}


@pytest.fixture(scope="module")
def real_outcomes(mutation_runs) -> dict[tuple[str, str, str], str]:
    run = mutation_runs.real
    assert run.summary is not None, run.output
    assert run.exit_code == 0, run.stdout
    return {(r["check_id"], r["stack"], r["resource"]): r["outcome"] for r in run.summary["results"]}


def _resources_of(stacks: dict[str, dict], resource_types: tuple[str, ...]) -> dict[tuple[str, str], dict]:
    return {(stack_name, f"{resource_type}.{name}"): body
            for stack_name, stack in stacks.items()
            for resource_type in resource_types
            for name, body in stack.get("resource", {}).get(resource_type, {}).items()}


def test_every_platform_namespace_passes_the_mesh_checks_in_the_real_synth(stacks, real_outcomes, environments):
    namespaces = _resources_of(stacks, ("kubernetes_namespace_v1",))
    by_name = {}
    for (stack_name, address), body in namespaces.items():
        by_name.setdefault(body["metadata"]["name"], []).append((stack_name, address, body["metadata"]))
    # the platform's namespaces, in each environment's platform stack
    assert set(by_name) == SYSTEM_NAMESPACES | APPLICATION_NAMESPACES
    platform_stacks = sorted(f"{name}-platform" for name in environments)
    assert all(sorted(stack_name for stack_name, _, _ in found) == platform_stacks for found in by_name.values())
    for name, found in by_name.items():
        for stack_name, address, metadata in found:
            inject = "disabled" if name in SYSTEM_NAMESPACES else "enabled"
            assert metadata["annotations"]["linkerd.io/inject"] == inject, (stack_name, name)
            assert real_outcomes.get(("CKV_PLAT_17", stack_name, address)) == "passed", (stack_name, name)
            assert real_outcomes.get(("CKV2_PLAT_5", stack_name, address)) == "passed", (stack_name, name)


def test_default_deny_policies_reference_their_namespace_as_ckv2_plat_5_needs(stacks, environments):
    # CKV2_PLAT_5 sees a NetworkPolicy in a namespace only through a reference to the namespace resource
    # (modules/common/kubernetes_objects.py: emit(..., namespaces=...)); a plain name, or depends_on, would not prove
    # it.
    application = {reference for stack in stacks.values() for reference, name in namespace_names(stack).items()
                   if name in APPLICATION_NAMESPACES}
    denies = {key: body for key, body in _resources_of(stacks, ("kubernetes_network_policy_v1",)).items()
              if body["metadata"]["name"] == "default-deny" and body["metadata"]["namespace"] in application}
    assert len(denies) == len(environments) * len(APPLICATION_NAMESPACES)
    namespace_reference = re.compile(r"^\$\{kubernetes_namespace_v1\.[^.]+\.metadata\[0\]\.name\}$")
    for key, body in denies.items():
        assert namespace_reference.match(body["metadata"]["namespace"]), key
        assert "depends_on" not in body, key


def test_data_layer_checks_pass_on_every_real_resource_but_dev_tier_waivers(stacks, real_outcomes, environments,
                                                                          stack_environments):
    checked = 0
    for check_id, resource_types in DATA_CHECK_TYPES.items():
        for (stack_name, address), body in _resources_of(stacks, resource_types).items():
            waived = (check_id in DEV_TIER_WAIVED and stack_environments[stack_name].tier is Tier.DEV) or \
                any(check_id == c and address.startswith(prefix) for c, prefix in WAIVED_RESOURCES)
            expected = None if "replicate_source_db" in body else "skipped" if waived else "passed"
            assert real_outcomes.get((check_id, stack_name, address)) == expected, (check_id, stack_name, address)
            checked += 1
    assert checked >= len(environments) * (4 + 3 + 1 + 1 + 6 + 1 + 8)


@pytest.fixture(scope="module")
def regressions(mutation_runs) -> tuple[GateRun, dict[str, tuple]]:
    """prod-platform and prod-data of a copy of the real synth, with the regressions of
    gate_mutations.namespace_and_data_regressions: a folder of the session's one gate run over the mutants."""
    return mutation_runs.namespace_and_data


def test_each_regression_of_the_real_synth_fails_the_gate_on_its_resource(regressions, real_outcomes):
    run, expected = regressions
    assert run.exit_code == 1
    new_failures = {f for f in run.failures() if f[0] in NAMESPACE_AND_DATA_CASES}
    assert new_failures == set(expected.values())
    for check_id, stack, resource in expected.values():
        assert real_outcomes[(check_id, stack, resource)] == "passed"


# ---------------------------------------------------------------------------------------------------------------
# the checks of the gate's blind spots, each on its own fixture stacks: in those stacks every resource of the
# check's types fails when its name starts with fail_ and holds the case's word, has no result when listed
# as not applicable, and passes otherwise. CKV_PLAT_31-36 are the gate's own joined checks
# (policies/joined_checks.py), which read several resources (and stacks: acme-cluster and acme-platform are
# one environment, "acme").


@dataclass(frozen=True)
class TopicCase:
    stacks: tuple[str, ...]
    resource_types: tuple[str, ...]
    #: a resource fails when its name starts with fail_ and holds this word
    fail_marker: str
    not_applicable: frozenset[str] = frozenset()


SECURITY_GROUP_TYPES = ("aws_security_group", "aws_vpc_security_group_ingress_rule",
                        "aws_vpc_security_group_egress_rule")
TOPIC_CASES = {
    "CKV_PLAT_24": TopicCase(("github-oidc",), ("aws_iam_role",), "oidc", frozenset({"na_service_role"})),
    "CKV_PLAT_25": TopicCase(("security-groups",), SECURITY_GROUP_TYPES, "internet"),
    "CKV_PLAT_26": TopicCase(("security-groups",), SECURITY_GROUP_TYPES, "allproto"),
    "CKV_PLAT_27": TopicCase(("iam-escalation",), ("aws_iam_role_policy", "aws_iam_policy"), "passrole"),
    "CKV_PLAT_28": TopicCase(("pod-security",), ("kubernetes_namespace_v1",), "psa"),
    "CKV_PLAT_29": TopicCase(("literal-secrets",), ("helm_release",), "values"),
    "CKV_PLAT_30": TopicCase(("literal-secrets",), ("kubernetes_secret_v1",), "secretdata"),
    "CKV_PLAT_31": TopicCase(("acme-cluster",), ("aws_eks_access_policy_association",), ""),
    "CKV_PLAT_32": TopicCase(("acme-platform",), ("aws_eks_pod_identity_association",), ""),
    "CKV_PLAT_33": TopicCase(("acme-cluster", "acme-platform"),
                             ("kubernetes_namespace_v1", "helm_release", "aws_eks_cluster"), ""),
    # edge-network and edge-workloads are one environment, "edge": its VPC and public subnets judge the releases
    "CKV_PLAT_35": TopicCase(("edge-workloads",), ("helm_release",), "netauth",
                             frozenset({"na_no_network_authentication"})),
    "CKV_PLAT_36": TopicCase(("edge-balancers",), ("helm_release",), "lb", frozenset({"na_no_load_balancer"})),
}


@pytest.mark.parametrize("check_id", sorted(TOPIC_CASES))
def test_blind_spot_check_gives_the_expected_result_on_its_fixtures(check_id, stack_outcomes):
    case = TOPIC_CASES[check_id]
    addresses = {key for key in _fixture_addresses(case.resource_types) if key[0] in case.stacks}
    names = {address.split(".", 1)[1] for _, address in addresses}
    failing = {name for name in names if name.startswith("fail_") and case.fail_marker in name}
    assert failing and names - failing - case.not_applicable, "the case needs passing and failing fixtures"
    expected = {key: None if key[1].split(".", 1)[1] in case.not_applicable
                else "failed" if key[1].split(".", 1)[1] in failing else "passed" for key in addresses}
    assert {key: stack_outcomes.get((check_id, *key)) for key in addresses} == expected


def test_cni_enforcement_fails_a_cluster_without_the_setting_or_without_the_add_on(stack_outcomes):
    assert stack_outcomes[("CKV_PLAT_34", "acme-cluster", "aws_eks_addon.vpc-cni")] == "passed"
    assert stack_outcomes[("CKV_PLAT_34", "bare-cluster", "aws_eks_addon.vpc-cni")] == "failed"
    assert stack_outcomes[("CKV_PLAT_34", "cniless-cluster", "aws_eks_cluster.cluster")] == "failed"
    # kube-system of the acme environment has its default-deny (in acme-platform): the cluster passes
    assert stack_outcomes[("CKV_PLAT_33", "acme-cluster", "aws_eks_cluster.cluster")] == "passed"
    assert stack_outcomes[("CKV_PLAT_33", "bare-cluster", "aws_eks_cluster.cluster")] == "failed"


def test_a_kms_key_policy_written_as_a_string_is_checked_once_the_gate_parses_it(stack_outcomes, tmp_path):
    # GIVEN a key whose policy (a JSON string, as cdktf writes it) lets Principal AWS "*" use the key
    address = ("github-oidc", "aws_kms_key.string_policy_open_to_everyone")
    # THEN plain checkov passes it, and the gate fails it
    _, report = run_checkov(FIXTURES / "stacks" / "github-oidc", "--check", "CKV_AWS_33")
    assert [r["resource"] for r in report["results"]["passed_checks"]] == ["resource.string_policy_open_to_everyone"]
    assert stack_outcomes[("CKV_AWS_33", *address)] == "failed"


def test_secrets_framework_findings_name_the_release_whose_values_hold_them(stack_outcomes):
    assert stack_outcomes[("CKV_SECRET_2", "literal-secrets", "helm_release.fail_values_aws_key")] == "failed"
    assert ("CKV_SECRET_2", "literal-secrets", "helm_release.pass_values_secret_names") not in stack_outcomes


def test_canary_the_entropy_detector_flags_the_names_of_secrets(stack_outcomes):
    # The reason of the CKV_SECRET_6 skip in policies/skips.yaml: existingSecret/passwordKey name a secret and
    # the detector flags them; CKV_PLAT_29 tells a name from a value. Drop the skip when this canary fails.
    assert stack_outcomes[("CKV_SECRET_6", "literal-secrets", "helm_release.pass_values_secret_names")] == "failed"
    assert stack_outcomes[("CKV_PLAT_29", "literal-secrets", "helm_release.pass_values_secret_names")] == "passed"


def test_the_github_trust_check_explains_what_is_wrong(fixture_run):
    details = {(f["check_id"], f["resource"]): f["details"] for f in fixture_run.summary["failures"]}
    assert details[("CKV_PLAT_24", "aws_iam_role.fail_oidc_deploy_pull_request")] == [
        "a deploy role accepts only environment:<its github-environment tag> (environment:prod) from "
        "refs/heads/main, found ['pull_request from refs/pull/7/merge']"]
    assert details[("CKV_PLAT_24", "aws_iam_role.fail_oidc_image_push_without_environment")] == [
        "an image-push role accepts only environment:<its github-environment tag> (environment:images-prod) from "
        "refs/heads/main, found ['ref:refs/heads/main from refs/heads/main']"]
    assert details[("CKV_PLAT_35", "helm_release.fail_netauth_private_subnet")] == [
        "inference/load-balancers: 10.40.0.0/24 admits the non-public subnet(s) 10.40.0.0/18"]
    assert details[("CKV_PLAT_35", "helm_release.fail_netauth_whole_vpc")] == [
        "inference/load-balancers: 10.40.0.0/16 covers the whole VPC 10.40.0.0/16"]
    assert details[("CKV_PLAT_36", "helm_release.fail_lb_ingress_without_sources")] == [
        "Ingress inference/inference: no inbound-cidrs (nor security-groups): the controller admits 0.0.0.0/0"]
    assert details[("CKV_PLAT_36", "helm_release.fail_lb_plain_port_beside_tls")] == [
        "Service inference/triton-grpc: a certificate, but port(s) 8001 are not TLS (ssl-ports)"]
    assert details[("CKV_PLAT_32", "aws_eks_pod_identity_association.fail_controller_in_workload_namespace")] == [
        "the aws-load-balancer-controller role is bound to inference/aws-load-balancer-controller, reviewed for "
        "kube-system/aws-load-balancer-controller"]
