"""The policy gate (tools/gate): it cannot pass by accident, it passes the real synth, and it catches regressions.

Most tests run the gate as ``make gate`` does, as a subprocess with the checkov environment's Python, on small
synthesized-folder look-alikes built in tmp_path or on a copy of the session's real synth (``synth_outdir``).
The first tests are plain unit tests of the gate's preparation and verdict, which need no checkov.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from gate_folders import CDKTF_NULLS, OPEN_SSH_INGRESS, security_group_stack, write_synth_folder
from gate_mutations import SeveralRegressions

from tools.gate import policy, stacks
from tools.gate.harness import (
    CHECKOV_PYTHON,
    REPO_ROOT,
    GateRun,
    require_checkov_environment,
    run_checkov,
    run_gate,
)
from tools.gate.policy import Policies, Skip
from tools.gate.scan import CheckovRun
from tools.gate.stacks import GateError
from tools.gate.verdict import decide


def checkov_passed(report: dict, check_id: str) -> list[str]:
    return [r["resource"] for r in report["results"]["passed_checks"] if r["check_id"] == check_id]


# ---------------------------------------------------------------------------------------------------------------
# unit tests: preparation and verdict (no checkov)

def test_strip_nulls_removes_every_null_at_any_depth():
    document = {"a": None, "b": [None, {"c": None, "d": [1, None]}], "e": {"f": {"g": None}}, "h": 0, "i": False}
    assert stacks.strip_nulls(document) == ({"b": [{"d": [1]}], "e": {"f": {}}, "h": 0, "i": False}, 5)


def test_prepare_document_removes_required_version_and_says_so():
    cleaned, notes = stacks.prepare_document(security_group_stack(ingress={**OPEN_SSH_INGRESS, **CDKTF_NULLS},
                                                                  required_version=">= 1.10"))
    assert "required_version" not in cleaned["terraform"]
    assert cleaned["terraform"]["required_providers"]
    assert "self" not in cleaned["resource"]["aws_security_group"]["bastion"]["ingress"][0]
    assert notes == ["stripped 4 explicit null(s)",
                     "removed terraform.required_version (checkov 3.3 cannot parse it: issue 7454)"]


def test_resource_lines_maps_each_resource_start_line_to_its_address():
    document = {"data": {"aws_iam_policy_document": {"doc": {"statement": []}}},
                "resource": {"aws_s3_bucket": {"logs": {"bucket": "x"}, 'we"ird': {}},
                             "aws_eks_cluster": {"c": {"name": "c", "vpc_config": {"subnet_ids": []}}}}}
    text = json.dumps(document, indent=2)
    index = stacks.resource_lines(text)
    lines = text.splitlines()
    assert sorted(index.values()) == ["aws_eks_cluster.c", "aws_s3_bucket.logs", 'aws_s3_bucket.we"ird',
                                      "data.aws_iam_policy_document.doc"]
    for number, address in index.items():
        assert json.dumps(address.split(".")[-1]) in lines[number - 1]


def test_skips_need_a_reason_and_a_real_check_id(tmp_path):
    skips = tmp_path / "skips.yaml"
    skips.write_text("skips:\n  - id: CKV_AWS_39\n    reason: no\n")
    with pytest.raises(GateError, match="needs a reason"):
        policy.load_skips(skips)
    skips.write_text("skips:\n  - id: CKV_AWS_*\n    reason: every AWS check is noise on this platform\n")
    with pytest.raises(GateError, match="not a checkov check id"):
        policy.load_skips(skips)


def test_a_skip_covers_only_its_stacks_and_resources():
    skip = Skip("CKV_AWS_338", "non-prod keeps logs 30 days by design", ("dev-*",), ("aws_cloudwatch_log_group.*",))
    assert skip.covers("CKV_AWS_338", "dev-cluster", "aws_cloudwatch_log_group.logs")
    assert not skip.covers("CKV_AWS_338", "prod-cluster", "aws_cloudwatch_log_group.logs")
    assert not skip.covers("CKV_AWS_338", "dev-cluster", "aws_s3_bucket.logs")
    assert not skip.covers("CKV_AWS_39", "dev-cluster", "aws_cloudwatch_log_group.logs")



def test_a_tier_scoped_skip_covers_the_stacks_of_every_environment_of_that_tier_and_no_other(tmp_path):
    skip = Skip("CKV_AWS_157", "single-AZ databases outside prod by design", ("*-data",), ("aws_db_instance.*",),
                tiers=("dev", "staging"))
    policies = Policies(folder=tmp_path, config_file=tmp_path, checks_dir=tmp_path, skips=(skip,), why={},
                        graph_check_targets={},
                        environment_tiers={"dev": "dev", "dev-eu": "staging", "perf": "staging", "prod": "prod"})
    assert policies.skip_for("CKV_AWS_157", "perf-data", "aws_db_instance.db") is skip
    assert policies.skip_for("CKV_AWS_157", "dev-eu-data", "aws_db_instance.db") is skip
    assert policies.tier_of("dev-eu-data") == "staging"  # the longest environment name a stack starts with
    assert policies.skip_for("CKV_AWS_157", "prod-data", "aws_db_instance.db") is None
    # A stack of no known environment keeps its checks: a tier-scoped waiver never applies by guess.
    assert policies.skip_for("CKV_AWS_157", "unknown-data", "aws_db_instance.db") is None


def test_the_gate_reads_each_environment_tier_from_the_environment_files(tmp_path):
    (tmp_path / "perf.yaml").write_text("name: perf\ntier: staging\n")
    assert policy.load_environment_tiers(tmp_path) == {"perf": "staging"}
    (tmp_path / "odd.yaml").write_text("name: odd\ntier: qa\n")
    with pytest.raises(GateError, match="tier 'qa' is not one of"):
        policy.load_environment_tiers(tmp_path)


def test_the_gate_knows_exactly_the_tiers_an_environment_file_may_declare():
    from platform_config.models import Tier

    assert set(policy.TIERS) == {t.value for t in Tier}


def test_a_skip_with_an_unknown_tier_is_refused(tmp_path):
    skips = tmp_path / "skips.yaml"
    skips.write_text("skips:\n  - id: CKV_AWS_39\n    tiers: [development]\n"
                     "    reason: a made-up reason long enough for the rule\n")
    with pytest.raises(GateError, match=r"tiers \['development'\] unknown"):
        policy.load_skips(skips)


def test_no_skip_names_an_environment_so_a_new_environment_file_gets_its_tier_waivers():
    """Stack patterns may select layers (``*-data``), never an environment: a fourth environment of a tier must
    be gated exactly like the others of its tier."""
    for skip in policy.load_skips(REPO_ROOT / "policies" / "skips.yaml"):
        for pattern in skip.stacks:
            assert pattern.startswith("*"), f"{skip.check_id}: stacks pattern {pattern!r} names an environment"

@pytest.mark.parametrize("option", ["skip-check: [CKV_AWS_39]", "soft-fail: true", "check: [CKV_AWS_24]",
                                    "skip-path: [stacks]"])
def test_the_gate_refuses_checkov_options_that_hide_results(tmp_path, option):
    shutil.copytree(REPO_ROOT / "policies", tmp_path / "policies")
    config = tmp_path / "policies" / "checkov.yaml"
    config.write_text(config.read_text() + option + "\n")
    with pytest.raises(GateError, match="not allowed"):
        policy.load(tmp_path / "policies")


def test_the_gate_refuses_a_checks_folder_without_init(tmp_path):
    shutil.copytree(REPO_ROOT / "policies", tmp_path / "policies")
    (tmp_path / "policies" / "checks" / "__init__.py").unlink()
    with pytest.raises(GateError, match=r"__init__\.py is missing"):
        policy.load(tmp_path / "policies")


def _decide(tmp_path: Path, records: list[dict], *, parsing_errors=(), skips=()):
    folder = write_synth_folder(tmp_path / "out", {"s": security_group_stack(ingress=OPEN_SSH_INGRESS)})
    stack = stacks.read_manifest(folder)[0]
    (tmp_path / "scan").mkdir()
    prepared = stacks.prepare(stack, tmp_path / "scan")
    for record in records:
        record.setdefault("file_path", f"/{prepared.scan_file.parent.name}/cdk.tf.json")
        record.setdefault("file_line_range", [next(iter(prepared.scan_lines))])
    run = CheckovRun(version="3.3.30", records=records, parsing_errors=list(parsing_errors), errors=[], stderr="",
                     raw={}, exit_code=1)
    policies = Policies(folder=tmp_path, config_file=tmp_path, checks_dir=tmp_path, skips=tuple(skips), why={},
                        graph_check_targets={})
    return decide([stack], [prepared], run, policies, str, [])


def test_a_stack_without_any_passed_check_fails_the_gate(tmp_path):
    verdict = _decide(tmp_path, [{"check_id": "CKV_AWS_24", "result": "failed", "resource": "resource.bastion"}])
    assert [(p.kind, p.stack) for p in verdict.problems] == [("no-passed-check", "s")]
    assert verdict.failures[0].resource == "aws_security_group.bastion"  # attributed by line, not checkov's name
    assert not verdict.passed


def test_a_skip_waives_failures_only_and_checkov_own_skips_fail_the_gate(tmp_path):
    skip = Skip("CKV_AWS_24", "a made-up reason long enough for the rule")
    verdict = _decide(tmp_path, [
        {"check_id": "CKV_AWS_24", "result": "failed"}, {"check_id": "CKV_AWS_25", "result": "passed"},
        {"check_id": "CKV_AWS_23", "result": "skipped", "check_result": {"suppress_comment": "inline"}}],
        skips=[skip])
    assert [(r.check_id, r.outcome, r.skip_reason) for r in verdict.results] == [
        ("CKV_AWS_24", "skipped", skip.reason), ("CKV_AWS_25", "passed", None)]
    assert [p.kind for p in verdict.problems] == ["unexpected-skip"]
    assert verdict.skips == [(skip, 1)]


# ---------------------------------------------------------------------------------------------------------------
# the accident paths: each passes plain checkov (shown by the canary tests) and fails the gate

@pytest.fixture(scope="module")
def accident_folder(look_alike_runs) -> Path:
    return look_alike_runs.accidents[1]


@pytest.fixture(scope="module")
def accident_run(look_alike_runs) -> GateRun:
    """The gate over the accidents: a folder of the session's one gate run over the look-alike folders."""
    return look_alike_runs.accidents[0]


def test_canary_cdktf_nulls_hide_an_open_ssh_rule_from_plain_checkov(accident_folder):
    _, report = run_checkov(accident_folder / "stacks" / "dev-nulls")
    assert checkov_passed(report, "CKV_AWS_24") == ["resource.bastion"]


def test_canary_required_version_makes_plain_checkov_run_nothing_and_exit_0(accident_folder):
    exit_code, report = run_checkov(accident_folder / "stacks" / "dev-required-version")
    assert exit_code == 0
    assert report["summary"]["parsing_errors"] == 1
    assert report["summary"]["passed"] == report["summary"]["failed"] == 0


def test_nulls_hiding_an_open_ssh_rule_fail_the_gate(accident_run):
    assert accident_run.exit_code == 1
    assert ("CKV_AWS_24", "dev-nulls", "aws_security_group.bastion") in accident_run.failures()
    assert "FAILED CKV_AWS_24 dev-nulls aws_security_group.bastion" in accident_run.stdout


def test_a_stack_with_required_version_is_still_scanned_and_fails_the_gate(accident_run):
    assert ("CKV_AWS_24", "dev-required-version", "aws_security_group.bastion") in accident_run.failures()
    assert "dev-required-version: removed terraform.required_version" in accident_run.stdout
    assert accident_run.stack("dev-required-version")["passed"] > 0


def test_manifest_stacks_missing_from_the_results_fail_the_gate(accident_run):
    problems = accident_run.problem_kinds()
    assert ("missing-stack", "dev-empty") in problems
    assert ("missing-stack", "dev-missing") in problems
    assert "[missing-stack] dev-missing: stack dev-missing:" in accident_run.stdout
    assert "Traceback" not in accident_run.output


def test_parsing_errors_and_crashing_checks_fail_the_gate(tmp_path):
    # GIVEN a copy of the policies with a check that raises, and a stack checkov cannot parse
    shutil.copytree(REPO_ROOT / "policies", tmp_path / "policies")
    (tmp_path / "policies" / "checks" / "plat_crash.py").write_text(
        "from plat_common import PlatformCheck\n\n\nclass Crash(PlatformCheck):\n"
        "    def __init__(self):\n"
        "        super().__init__(id='CKV_PLAT_999', name='crash', why='crash', resources=['aws_security_group'],"
        " categories=[])\n\n    def problems(self, conf):\n        raise KeyError('boom')\n\n\nCrash()\n")
    folder = write_synth_folder(tmp_path / "out", {
        "dev-ok": security_group_stack(ingress={**OPEN_SSH_INGRESS, "from_port": 443, "to_port": 443}),
        "dev-unparsable": {"resource": {"aws_s3_bucket": {"logs": "not an object"}}}})
    # WHEN the gate runs with those policies
    run = run_gate(folder, tmp_path / "reports", "--policies", str(tmp_path / "policies"), "--manifest-stacks")
    # THEN both fail it, with clean messages
    assert run.exit_code == 1
    kinds = run.problem_kinds()
    assert ("parsing-error", "dev-unparsable") in kinds
    assert ("checkov-error", None) in kinds
    assert "Failed to run check CKV_PLAT_999" in run.stdout
    assert "Traceback" not in run.stdout


def test_without_the_checkov_environment_the_gate_says_how_to_create_it(accident_folder, tmp_path):
    run = run_gate(accident_folder, tmp_path, "--checkov", str(tmp_path / "no-checkov"), "--manifest-stacks")
    assert run.exit_code == 2
    assert "make checkov-env" in run.stderr
    assert "Traceback" not in run.output


def test_without_a_synth_output_the_gate_says_so(tmp_path):
    run = run_gate(tmp_path / "cdktf.out", tmp_path / "reports")
    assert run.exit_code == 2
    assert "is not a folder: synthesize first" in run.stderr
    assert "Traceback" not in run.output
    assert run.summary is None  # no report that could be mistaken for this run's


# ---------------------------------------------------------------------------------------------------------------
# the real synth: the gate passes it, and fails each regression on a copy of it

@pytest.fixture(scope="module")
def real_run(mutation_runs) -> GateRun:
    """The gate over the real synth: the first folder of the session's one gate run over it and its mutants."""
    return mutation_runs.real


def test_the_real_synth_passes_the_gate(real_run, synth_outdir):
    manifest = json.loads((synth_outdir / "manifest.json").read_text())
    assert real_run.summary is not None, real_run.output
    assert sorted(s["name"] for s in real_run.summary["stacks"]) == sorted(manifest["stacks"])
    assert all(s["passed"] > 0 for s in real_run.summary["stacks"])
    assert real_run.exit_code == 0, real_run.stdout


@pytest.fixture(scope="module")
def mutations(mutation_runs) -> SeveralRegressions:
    return mutation_runs.several[0]


@pytest.fixture(scope="module")
def mutated_run(mutation_runs) -> GateRun:
    """The gate over the copy with several regressions: a folder of the session's one gate run."""
    return mutation_runs.several[1]


def _assert_caught(mutated_run: GateRun, real_run: GateRun, expected: list[tuple[str, str, str]]) -> None:
    assert mutated_run.exit_code == 1
    for check_id, stack, resource in expected:
        assert (check_id, stack, resource) not in real_run.failures()
        assert (check_id, stack, resource) in mutated_run.failures()
        assert f"FAILED {check_id} {stack} {resource}" in mutated_run.stdout


def test_removing_the_gpu_taint_fails_the_gate(mutations, mutated_run, real_run):
    _assert_caught(mutated_run, real_run, mutations.expected["taint"])


def test_allowing_imdsv1_fails_the_gate(mutations, mutated_run, real_run):
    _assert_caught(mutated_run, real_run, mutations.expected["http_tokens"])


def test_removing_a_bucket_public_access_block_fails_the_gate(mutations, mutated_run, real_run):
    if "public_access_block" not in mutations.expected:
        pytest.skip("no aws_s3_bucket_public_access_block in the synthesized stacks yet: no bucket exists")
    _assert_caught(mutated_run, real_run, mutations.expected["public_access_block"])


def test_adding_required_version_does_not_stop_the_gate_from_scanning(mutations, mutated_run, real_run):
    _assert_caught(mutated_run, real_run, mutations.expected["required_version"])
    unchanged = mutations.required_version_only
    assert mutated_run.stack(unchanged)["passed"] == real_run.stack(unchanged)["passed"] > 0
    assert mutated_run.stack(unchanged)["failed"] == real_run.stack(unchanged)["failed"]
    assert not [p for p in mutated_run.summary["problems"] if p["kind"] == "parsing-error"]


def test_the_sarif_report_locates_each_failure_in_its_stack_file(mutations, mutated_run):
    sarif = json.loads((mutated_run.reports_dir / "gate.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    check_id, stack, resource = mutations.expected["taint"][0]
    results = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == check_id
               and r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == f"{stack}/{resource}"]
    assert len(results) == 1
    physical = results[0]["locations"][0]["physicalLocation"]
    path = Path(physical["artifactLocation"]["uri"].removeprefix("file://"))
    line = path.read_text().splitlines()[physical["region"]["startLine"] - 1]
    assert json.dumps(resource.split(".", 1)[1]) in line
    rule_ids = [rule["id"] for rule in sarif["runs"][0]["tool"]["driver"]["rules"]]
    assert results[0]["ruleIndex"] == rule_ids.index(check_id)


# ---------------------------------------------------------------------------------------------------------------
# what the gate changes in checkov for speed changes nothing it reads

LOADERS_COMPARED = """
import json, sys
sys.path.insert(0, "tools/gate")
import checkov_main
import yaml
from checkov.common.parsers.yaml import loader

fast = checkov_main._line_loader_on_libyaml()
assert fast is not None, "PyYAML of the checkov environment has no libyaml"
differing = []
for path in sys.argv[1:]:
    text = open(path, encoding="utf-8").read()
    if list(yaml.load_all(text, Loader=fast)) != list(yaml.load_all(text, Loader=loader.SafeLineLoader)):
        differing.append(path)
print(json.dumps(differing))
"""


def test_checkov_reads_every_stack_with_libyaml_exactly_as_with_its_own_loader(synth_outdir):
    """Same values, same line markers on every mapping: the findings and the lines the reports point at."""
    require_checkov_environment()
    files = sorted(str(p) for p in (synth_outdir / "stacks").glob("*/cdk.tf.json"))
    completed = subprocess.run([str(CHECKOV_PYTHON), "-c", LOADERS_COMPARED, *files], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert files and json.loads(completed.stdout) == []
