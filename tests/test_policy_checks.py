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

from tools.gate.harness import GateRun, run_gate

FIXTURES = Path(__file__).parent / "fixtures" / "policies"
CHECKS_DIR = Path(__file__).resolve().parent.parent / "policies" / "checks"
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
def fixture_run(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    run = run_gate(FIXTURES, tmp_path_factory.mktemp("policy-reports"))
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
    for path in CHECKS_DIR.iterdir():
        if path.suffix in (".py", ".yaml"):
            defined |= set(re.findall(r"\b(CKV2?_PLAT_\d+)\b", path.read_text()))
    assert defined == set(CASES), "every custom check needs a Case here (and fixtures), and only those"
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
