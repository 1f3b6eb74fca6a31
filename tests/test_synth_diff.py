"""The synth diff (tools/synth_diff): what a change does to the synthesized stacks, and the workflow helpers.

The diff is a pure function of two synthesized folders. tests/fixtures/synth_diff/{base,head} are a small
hand-made pair with four known changes: an added IAM role, a removed S3 bucket, the cpu node group's construct id
renamed (pool-cpu -> pool-general) with its content unchanged, and the a100-mig node group's max_size raised.
tests/fixtures/synth_diff/delivery is a synthesized folder with delivery stacks for the workflow helpers.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.synth_diff.__main__ import main
from tools.synth_diff.diff import diff_stacks, diff_synth_folders, flatten, load_manifest, load_stacks
from tools.synth_diff.pipeline import (
    COMMENT_LIMIT,
    aws_target,
    deploy_order,
    environment_names,
    github_role_arn,
    label_sarif_runs,
    plan_matrix,
    render_pr_comment,
    stacks_of,
    summarize_plan,
)
from tools.synth_diff.render import render, to_json
from tools.synth_diff.stateful import STATEFUL_TYPES
from tools.synth_diff.synth import SynthesisError, export_revision, resolve_revision

FIXTURES = Path(__file__).parent / "fixtures" / "synth_diff"
BASE, HEAD, DELIVERY = FIXTURES / "base", FIXTURES / "head", FIXTURES / "delivery"
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fixture_diff():
    return diff_synth_folders(BASE, HEAD)


def addresses(resources) -> list[str]:
    return [r.address for r in resources]


# --- the fixture pair: exactly the known changes -----------------------------------------------------------------

def test_the_fixture_pair_reports_exactly_the_known_changes(fixture_diff):
    assert fixture_diff.changed_stacks == ["dev-cluster", "dev-storage"]
    cluster = fixture_diff.stack("dev-cluster")
    assert addresses(cluster.added) == ["aws_iam_role.cluster-autoscaler-role_7C4D2E19"]
    assert cluster.removed == []
    assert [(c.resource.address, c.attributes) for c in cluster.changed] == [
        ("aws_eks_node_group.pool-a100-mig_node-group_92B7C1A8", ("scaling_config.max_size",))]
    assert [(r.old.address, r.new.address) for r in cluster.replaced] == [
        ("aws_eks_node_group.pool-cpu_node-group_1ACC2281", "aws_eks_node_group.pool-general_node-group_5E1F0A2B")]
    storage = fixture_diff.stack("dev-storage")
    assert addresses(storage.removed) == ["aws_s3_bucket.bucket-datasets_bucket_A1B2C3D4"]
    assert (storage.added, storage.changed, storage.replaced) == ([], [], [])
    assert fixture_diff.cross_stack_moves == []
    assert fixture_diff.orphaned_stateful == []


def test_a_removed_bucket_is_flagged_as_a_destroyed_stateful_resource_despite_its_prevent_destroy(fixture_diff):
    [loss] = fixture_diff.destroyed_stateful
    assert (loss.stack, loss.resource.type, loss.resource.path) == ("dev-storage", "aws_s3_bucket",
                                                                    "bucket-datasets/bucket")
    assert loss.reason.startswith("removed from the stack")
    assert "prevent_destroy" in loss.reason
    assert loss.loses == STATEFUL_TYPES["aws_s3_bucket"]


def test_a_renamed_node_group_construct_id_is_flagged_as_a_replacement_of_identical_content(fixture_diff):
    [(stack, replacement)] = fixture_diff.replacements
    assert stack == "dev-cluster"
    assert (replacement.old.path, replacement.new.path) == ("pool-cpu/node-group", "pool-general/node-group")
    assert replacement.identical
    assert replacement.similarity == 1.0


def test_references_to_a_renamed_resource_do_not_count_as_changes_of_the_resources_holding_them(fixture_diff):
    changed = addresses(c.resource for c in fixture_diff.stack("dev-cluster").changed)
    assert "aws_eks_addon.workload-addons_coredns_6B1A2C3D" not in changed  # its depends_on names the new id


def test_cdktf_metadata_differences_are_not_changes(fixture_diff):
    assert fixture_diff.stack("dev-network").status == "unchanged"


def test_the_json_form_lists_the_changed_stacks_for_the_plan_matrix(fixture_diff):
    document = to_json(fixture_diff)
    assert document["changed_stacks"] == ["dev-cluster", "dev-storage"]
    assert document["stacks"]["dev-cluster"]["changed"][0]["attributes"] == ["scaling_config.max_size"]
    assert document["stacks"]["dev-cluster"]["changed"][0]["values"] == [
        {"path": "scaling_config.max_size", "base": "2", "head": "6"}]
    assert document["destroyed_stateful"][0]["address"] == "aws_s3_bucket.bucket-datasets_bucket_A1B2C3D4"


def test_the_markdown_report_leads_with_the_destroyed_bucket_and_the_replacement(fixture_diff):
    report = render(fixture_diff, "markdown", base_label="main", head_label="pr")
    assert report.startswith("### Synth diff: `main` → `pr`")
    assert "1 stateful resource(s) would be destroyed" in report
    assert "| `dev-storage` | `aws_s3_bucket` `bucket-datasets/bucket` | removed from the stack" in report
    assert "| `dev-cluster` | `aws_eks_node_group` | `pool-cpu/node-group` → `pool-general/node-group` | " \
           "identical content |" in report
    assert "- changed `aws_eks_node_group` `pool-a100-mig/node-group`: `scaling_config.max_size` `2` → `6`" in report
    assert "Unchanged: `dev-network`" in report


def test_the_text_report_marks_each_kind_of_change():
    report = render(diff_synth_folders(BASE, HEAD), "text")
    assert "  + aws_iam_role cluster-autoscaler-role/role" in report
    assert "  - aws_s3_bucket bucket-datasets/bucket" in report
    assert "  -/+ aws_eks_node_group pool-cpu/node-group -> pool-general/node-group (identical content)" in report
    assert "  DESTROYED dev-storage: aws_s3_bucket bucket-datasets/bucket" in report
    assert "  ~ aws_eks_node_group pool-a100-mig/node-group\n      scaling_config.max_size: 2 -> 6" in report


# --- the comparison rules, on small in-memory stacks -------------------------------------------------------------

def stack(name: str, resources: dict, **blocks) -> dict:
    """A parsed cdk.tf.json with ``resources`` as {type: {name: body}}; each body gets cdktf metadata."""
    with_metadata = {t: {n: {"//": {"metadata": {"path": f"{name}/{n}"}}, **b} for n, b in items.items()}
                     for t, items in resources.items()}
    return {"provider": {"aws": [{"allowed_account_ids": ["111111111111"], "region": "us-east-1"}]},
            "resource": with_metadata, "terraform": {"backend": {"s3": {"key": f"p/dev/{name}.tfstate"}}}, **blocks}


BUCKET = {"bucket": "mlops-dev-models", "force_destroy": False}


def test_a_moved_block_turns_a_construct_id_change_into_a_move_without_destroy():
    base = {"dev-data": stack("dev-data", {"aws_s3_bucket": {"old": BUCKET}})}
    head = {"dev-data": stack("dev-data", {"aws_s3_bucket": {"new": BUCKET}},
                              moved=[{"from": "aws_s3_bucket.old", "to": "aws_s3_bucket.new"}])}
    diff = diff_stacks(base, head)
    assert [(m.old.address, m.new.address) for m in diff.stack("dev-data").moved] == [
        ("aws_s3_bucket.old", "aws_s3_bucket.new")]
    assert diff.replacements == []
    assert diff.destroyed_stateful == []


def test_a_stateful_resource_renamed_by_construct_id_is_also_a_destroyed_stateful_resource():
    base = {"dev-data": stack("dev-data", {"aws_s3_bucket": {"models_1": BUCKET}})}
    head = {"dev-data": stack("dev-data", {"aws_s3_bucket": {"model-store_2": BUCKET}})}
    [loss] = diff_stacks(base, head).destroyed_stateful
    assert "construct id changed" in loss.reason


def test_a_changed_bucket_name_forces_a_replacement_and_is_flagged():
    base = {"dev-data": stack("dev-data", {"aws_s3_bucket": {"models": BUCKET}})}
    head = {"dev-data": stack("dev-data", {"aws_s3_bucket": {"models": {**BUCKET, "bucket": "mlops-dev-models-2"}}})}
    [loss] = diff_stacks(base, head).destroyed_stateful
    assert loss.reason.startswith("bucket changed, which forces a new resource")


def test_a_resource_moving_to_another_stack_of_the_same_account_is_flagged_as_destroyed_in_the_old_one():
    base = {"dev-cluster": stack("dev-cluster", {"aws_ecr_repository": {"repo": {"name": "agents/crewai"}}}),
            "dev-delivery": stack("dev-delivery", {})}
    head = {"dev-cluster": stack("dev-cluster", {}),
            "dev-delivery": stack("dev-delivery", {"aws_ecr_repository": {"repo_2": {"name": "agents/crewai"}}})}
    diff = diff_stacks(base, head)
    [move] = diff.cross_stack_moves
    assert (move.old_stack, move.new_stack) == ("dev-cluster", "dev-delivery")
    [loss] = diff.destroyed_stateful
    assert loss.reason.startswith("moves to stack dev-delivery")


def test_a_removed_stack_leaves_its_stateful_resources_orphaned_rather_than_destroyed():
    base = {"dev-data": stack("dev-data", {"aws_s3_bucket": {"models": BUCKET}})}
    diff = diff_stacks(base, {})
    assert diff.stack("dev-data").status == "removed"
    assert diff.destroyed_stateful == []
    [orphan] = diff.orphaned_stateful
    assert "nothing destroys it" in orphan.reason


def test_different_resources_of_one_type_are_not_mistaken_for_a_rename():
    base = {"dev": stack("dev", {"aws_iam_role_policy_attachment": {"a": {"role": "r", "policy_arn": "arn:x"}}})}
    head = {"dev": stack("dev", {"aws_iam_role_policy_attachment": {"b": {"role": "r", "policy_arn": "arn:y"}}})}
    diff = diff_stacks(base, head)
    assert diff.replacements == []
    assert (addresses(diff.stack("dev").added), addresses(diff.stack("dev").removed)) == (
        ["aws_iam_role_policy_attachment.b"], ["aws_iam_role_policy_attachment.a"])


def test_policy_documents_held_in_strings_are_compared_statement_by_statement():
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                      "Resource": "arn:aws:s3:::a/*"}]}
    wider = copy.deepcopy(policy)
    wider["Statement"][0]["Resource"] = "*"
    base = {"dev": stack("dev", {"aws_iam_role_policy": {"p": {"policy": json.dumps(policy)}}})}
    head = {"dev": stack("dev", {"aws_iam_role_policy": {"p": {"policy": json.dumps(wider)}}})}
    [change] = diff_stacks(base, head).stack("dev").changed
    assert change.attributes == ("policy:Statement[0].Resource",)


def test_attribute_paths_quote_keys_that_are_not_plain_names():
    assert flatten({"labels": {"nvidia.com/gpu.present": "true"}, "//": {"x": 1}}) == {
        'labels["nvidia.com/gpu.present"]': "true"}


# --- list entries: matched by name, so an insertion reads as one added entry ---------------------------------------

def release(objects: list[dict]) -> dict:
    """A helm_release body whose values hold Kubernetes objects, as the raw chart's ``resources`` list (YAML text)."""
    return {"name": "inference-servers", "values": [yaml.safe_dump({"resources": objects})]}


def model(name: str, kind: str = "Deployment", replicas: int = 2) -> dict:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "inference"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "server",
                                                                                  "image": f"{name}:1"}]}}}}


def release_change(before: list[dict], after: list[dict]):
    base = {"dev-workloads": stack("dev-workloads", {"helm_release": {"servers": release(before)}})}
    head = {"dev-workloads": stack("dev-workloads", {"helm_release": {"servers": release(after)}})}
    changed = diff_stacks(base, head).stack("dev-workloads").changed
    return changed[0] if changed else None


SERVERS = [model("vllm"), model("vllm", "Service"), model("triton"), model("batch-vllm")]


def test_an_object_inserted_in_the_middle_of_a_named_list_is_one_added_entry_and_no_field_changes():
    change = release_change(SERVERS, [*SERVERS[:2], model("vllm-small"), *SERVERS[2:]])
    assert change.added_entries == ("values[0]:resources[Deployment inference/vllm-small]",)
    assert (change.removed_entries, change.values, change.reordered) == ((), (), ())


def test_an_object_removed_from_the_middle_of_a_named_list_is_one_removed_entry_and_no_field_changes():
    change = release_change(SERVERS, [*SERVERS[:2], *SERVERS[3:]])
    assert change.removed_entries == ("values[0]:resources[Deployment inference/triton]",)
    assert (change.added_entries, change.values) == ((), ())


def test_a_renamed_entry_is_one_removed_and_one_added_entry():
    change = release_change(SERVERS, [*SERVERS[:2], model("triton-2"), *SERVERS[3:]])
    assert change.removed_entries == ("values[0]:resources[Deployment inference/triton]",)
    assert change.added_entries == ("values[0]:resources[Deployment inference/triton-2]",)
    assert change.values == ()


def test_a_field_of_a_named_entry_shows_old_and_new_value_under_the_entry_name():
    change = release_change(SERVERS, [*SERVERS[:2], model("triton", replicas=3), *SERVERS[3:]])
    assert change.values == (("values[0]:resources[Deployment inference/triton].spec.replicas", "2", "3"),)
    assert (change.added_entries, change.removed_entries) == ((), ())


def test_entries_that_only_change_order_are_reported_as_a_reordering():
    change = release_change(SERVERS, [SERVERS[2], *SERVERS[:2], SERVERS[3]])
    assert change.reordered == ("values[0]:resources",)
    assert (change.added_entries, change.removed_entries, change.values) == ((), (), ())


def test_entries_named_by_name_id_or_key_are_matched_by_that_field():
    for field in ("name", "id", "key"):
        before = {"set": [{field: "a", "value": "1"}, {field: "b", "value": "2"}]}
        after = {"set": [{field: "a", "value": "1"}, {field: "new", "value": "9"}, {field: "b", "value": "2"}]}
        base = {"dev": stack("dev", {"helm_release": {"r": before}})}
        head = {"dev": stack("dev", {"helm_release": {"r": after}})}
        [change] = diff_stacks(base, head).stack("dev").changed
        assert (change.added_entries, change.values) == ((f"set[{field}=new]",), ()), field


def test_lists_without_distinct_names_are_still_compared_by_position():
    for before, after in (({"subnet_ids": ["a", "b"]}, {"subnet_ids": ["a", "new", "b"]}),
                          ({"rules": [{"port": 1}, {"port": 2}]}, {"rules": [{"port": 1}, {"port": 9}, {"port": 2}]}),
                          ({"set": [{"name": "a"}, {"name": "a", "v": 1}]}, {"set": [{"name": "b"}, {"name": "a"}]})):
        base = {"dev": stack("dev", {"aws_thing": {"r": before}})}
        head = {"dev": stack("dev", {"aws_thing": {"r": after}})}
        [change] = diff_stacks(base, head).stack("dev").changed
        assert change.added_entries == change.removed_entries == ()
        assert change.values and all(re.match(r"^\w+\[\d+\]", path) for path, _, _ in change.values), change.values


def test_the_text_and_markdown_reports_show_an_added_entry_as_one_line():
    base = {"dev-workloads": stack("dev-workloads", {"helm_release": {"servers": release(SERVERS)}})}
    head = {"dev-workloads": stack("dev-workloads", {"helm_release": {"servers": release(
        [*SERVERS[:2], model("vllm-small"), *SERVERS[2:]])}})}
    diff = diff_stacks(base, head)
    text = render(diff, "text")
    assert text.endswith("  ~ helm_release servers\n      + values[0]:resources[Deployment inference/vllm-small]\n")
    assert "added `values[0]:resources[Deployment inference/vllm-small]`" in render(diff, "markdown")
    [change] = to_json(diff)["stacks"]["dev-workloads"]["changed"]
    assert change["added_entries"] == ["values[0]:resources[Deployment inference/vllm-small]"]


def _parsed(item: Any) -> Any:
    if not isinstance(item, str):
        return item
    try:
        return yaml.safe_load(item)
    except yaml.YAMLError:
        return item


def with_a_deployment_copied(value: Any) -> tuple[Any, str | None]:
    """``value`` with the objects of its first Deployment (those of the Deployment's name) copied under a new name
    into the middle of their list, YAML text re-serialized on the way; and the new name (None if no Deployment)."""
    if isinstance(value, str):
        document = _parsed(value)
        if not isinstance(document, dict | list):
            return value, None
        changed, name = with_a_deployment_copied(document)
        return (yaml.safe_dump(changed) if name else value), name
    if isinstance(value, dict):
        for key, item in value.items():
            changed, name = with_a_deployment_copied(item)
            if name:
                return {**value, key: changed}, name
    if isinstance(value, list):
        objects = [_parsed(item) for item in value]
        first = next((o for o in objects if isinstance(o, dict) and o.get("kind") == "Deployment"), None)
        if first:
            name = first["metadata"]["name"]
            copies = [(yaml.safe_dump if isinstance(item, str) else dict)(
                {**o, "metadata": {**o["metadata"], "name": f"{name}-copy"}})
                for item, o in zip(value, objects, strict=True)
                if isinstance(o, dict) and (o.get("metadata") or {}).get("name") == name]
            middle = len(value) // 2
            return [*value[:middle], *copies, *value[middle:]], f"{name}-copy"
        for index, item in enumerate(value):
            changed, name = with_a_deployment_copied(item)
            if name:
                return [*value[:index], changed, *value[index + 1:]], name
    return value, None


def test_a_model_deployment_inserted_in_the_platform_reads_as_its_own_objects_added(stacks):
    """GIVEN the synthesized platform WHEN the objects of one Deployment are copied under a new name into the middle
    of the list that holds them THEN the diff lists exactly those objects as added entries, nothing else."""
    head = copy.deepcopy(stacks)
    name, release_name, added = next(
        (stack_name, release_name, copied) for stack_name, body in sorted(head.items())
        for release_name, release_body in sorted((body.get("resource") or {}).get("helm_release", {}).items())
        if (copied := with_a_deployment_copied(release_body.get("values") or [])[1]))
    release_body = head[name]["resource"]["helm_release"][release_name]
    release_body["values"] = with_a_deployment_copied(release_body["values"])[0]
    diff = diff_stacks(stacks, head)
    assert diff.changed_stacks == [name]
    [change] = diff.stack(name).changed
    assert change.added_entries and all(e.endswith(f"/{added}]") for e in change.added_entries), \
        change.added_entries
    assert (change.removed_entries, change.values, change.reordered) == ((), (), ())


def test_a_changed_state_location_is_reported_as_a_settings_change_and_a_warning():
    base = {"dev": stack("dev", {})}
    head = {"dev": copy.deepcopy(base["dev"])}
    head["dev"]["terraform"]["backend"]["s3"]["key"] = "p/dev/renamed.tfstate"
    diff = diff_stacks(base, head)
    assert diff.stack("dev").settings == ["terraform.backend.s3.key"]
    assert "state location of dev changes" in render(diff, "markdown")


# --- the command line --------------------------------------------------------------------------------------------

def test_the_cli_compares_two_synthesized_folders_and_exits_zero_although_things_change(capsys):
    assert main(["diff", "--base-outdir", str(BASE), "--head-outdir", str(HEAD), "--format", "text"]) == 0
    assert "2 of 3 stacks change" in capsys.readouterr().out


def test_the_cli_writes_markdown_and_json_reports_to_files(tmp_path):
    markdown, document = tmp_path / "diff.md", tmp_path / "diff.json"
    assert main(["diff", "--base-outdir", str(BASE), "--head-outdir", str(HEAD), "--output", str(markdown),
                 "--json-output", str(document)]) == 0
    assert markdown.read_text().startswith("### Synth diff")
    assert json.loads(document.read_text())["changed_stacks"] == ["dev-cluster", "dev-storage"]


def test_the_cli_exits_one_when_the_base_revision_cannot_be_synthesized(capsys):
    assert main(["diff", "--base", "no-such-revision-anywhere", "--head-outdir", str(HEAD)]) == 1
    assert "'no-such-revision-anywhere' is not a commit" in capsys.readouterr().err


def test_an_unknown_revision_is_refused_before_anything_is_synthesized():
    with pytest.raises(SynthesisError, match="is not a commit"):
        resolve_revision(REPO_ROOT, "no-such-revision-anywhere")


def test_a_revision_is_exported_with_its_tracked_files_only(tmp_path):
    export_revision(REPO_ROOT, resolve_revision(REPO_ROOT, "HEAD"), tmp_path / "source")
    assert (tmp_path / "source" / "main.py").is_file()
    assert not (tmp_path / "source" / ".venv").exists()


# --- the real synthesized platform (the session's one synthesis) ---------------------------------------------------

def test_the_platform_compared_with_itself_has_no_changes(synth_outdir):
    diff = diff_synth_folders(synth_outdir, synth_outdir)
    assert diff.changed_stacks == []
    assert all(s.status == "unchanged" for s in diff.stacks)


def test_a_node_group_renamed_in_the_platform_is_flagged_as_a_replacement(synth_outdir, tmp_path):
    head = tmp_path / "head"
    shutil.copytree(synth_outdir, head)
    cluster = head / "stacks" / "dev-cluster" / "cdk.tf.json"
    document = json.loads(cluster.read_text())
    old = next(n for n in document["resource"]["aws_eks_node_group"] if n.startswith("pool-cpu_"))
    cluster.write_text(cluster.read_text().replace(old, "pool-general_node-group_0A1B2C3D"))
    diff = diff_synth_folders(synth_outdir, head)
    assert diff.changed_stacks == ["dev-cluster"]
    [(_, replacement)] = diff.replacements
    assert replacement.old.address == f"aws_eks_node_group.{old}"
    assert diff.stack("dev-cluster").changed == []  # add-ons and tags that reference it follow the rename


def test_every_environment_applies_its_network_before_its_cluster(synth_outdir, environments):
    manifest = load_manifest(synth_outdir)
    for name in environments:
        order = deploy_order(manifest, stacks_of(manifest, name, list(environments)))
        assert order.index(f"{name}-network") < order.index(f"{name}-cluster")


# --- workflow helpers ---------------------------------------------------------------------------------------------

def test_stacks_are_ordered_after_their_dependencies_and_independent_ones_by_name():
    manifest = load_manifest(DELIVERY)
    assert deploy_order(manifest, stacks_of(manifest, "dev", ["dev", "prod"])) == [
        "dev-delivery", "dev-network", "dev-cluster", "dev-platform"]


def test_a_dependency_cycle_is_refused():
    manifest = {"a": {"dependencies": ["b"]}, "b": {"dependencies": ["a"]}}
    with pytest.raises(ValueError, match="cycle"):
        deploy_order(manifest, ["a", "b"])


def test_the_plan_matrix_groups_changed_stacks_by_environment_in_apply_order():
    manifest = load_manifest(DELIVERY)
    matrix = plan_matrix(["prod-platform", "dev-cluster", "prod-network", "dev-gone"], manifest, ["dev", "prod"])
    assert matrix == {"include": [{"environment": "dev", "stacks": "dev-cluster", "github_environment": ""},
                                  {"environment": "prod", "stacks": "prod-network prod-platform",
                                   "github_environment": ""}]}


def test_environments_come_from_the_environment_files_or_else_from_the_stack_names(tmp_path):
    (tmp_path / "dev.yaml").write_text("name: dev\n")
    assert environment_names(tmp_path, ["x-network"]) == ["dev"]
    assert environment_names(tmp_path / "none", ["dev-network", "prod-eu-cluster"]) == ["dev", "prod-eu"]


@pytest.mark.parametrize(("environment", "kind", "arn"), [
    ("dev", "plan", "arn:aws:iam::111111111111:role/mlops-platform-github-plan"),
    ("prod", "deploy", "arn:aws:iam::333333333333:role/mlops-platform-github-deploy-prod"),
    ("prod", "image-push", "arn:aws:iam::333333333333:role/mlops-platform-github-image-push"),
])
def test_a_workflow_finds_its_role_in_the_synthesized_stacks_of_the_environment(environment, kind, arn):
    assert github_role_arn(DELIVERY, environment, kind, ["dev", "prod"]) == arn


def test_a_missing_role_points_at_the_delivery_stack_and_the_bootstrap(tmp_path):
    shutil.copytree(DELIVERY, tmp_path / "out")
    shutil.rmtree(tmp_path / "out" / "stacks" / "dev-delivery")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    del manifest["stacks"]["dev-delivery"]
    (tmp_path / "out" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LookupError, match="dev-delivery stack, and the stack deployed once by hand"):
        github_role_arn(tmp_path / "out", "dev", "plan", ["dev", "prod"])


def test_the_account_region_and_registry_come_from_the_aws_provider():
    assert aws_target(DELIVERY, "prod", ["dev", "prod"]) == {
        "account_id": "333333333333", "region": "us-east-1",
        "registry": "333333333333.dkr.ecr.us-east-1.amazonaws.com"}


def test_the_cli_prints_github_output_lines_for_the_aws_target(capsys):
    assert main(["aws-target", "--env", "dev", "--outdir", str(DELIVERY), "--env-dir", str(DELIVERY)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "account_id=111111111111", "region=us-east-1", "registry=111111111111.dkr.ecr.us-east-1.amazonaws.com"]


PLAN = {"resource_changes": [
    {"address": "aws_iam_role.a", "type": "aws_iam_role", "mode": "managed", "change": {"actions": ["create"]}},
    {"address": "aws_eks_node_group.b", "type": "aws_eks_node_group", "mode": "managed",
     "change": {"actions": ["update"]}},
    {"address": "aws_s3_bucket.c", "type": "aws_s3_bucket", "mode": "managed", "change": {"actions": ["delete"]}},
    {"address": "aws_kms_key.d", "type": "aws_kms_key", "mode": "managed",
     "change": {"actions": ["delete", "create"]}},
    {"address": "aws_vpc.e", "type": "aws_vpc", "mode": "managed", "change": {"actions": ["no-op"]}},
    {"address": "data.aws_iam_policy.f", "type": "aws_iam_policy", "mode": "data", "change": {"actions": ["read"]}},
]}


def test_a_plan_summary_counts_actions_and_names_destroyed_stateful_resources():
    assert summarize_plan(PLAN) == {"add": 1, "change": 1, "destroy": 1, "replace": 1, "forget": 0,
                                    "destroyed": ["aws_s3_bucket.c"], "replaced": ["aws_kms_key.d"],
                                    "stateful_destroyed": ["aws_s3_bucket.c", "aws_kms_key.d"]}


def test_the_pull_request_report_has_plans_per_stack_the_gate_and_the_synth_diff():
    comment = render_pr_comment(
        diff_markdown="### Synth diff: `a` → `b`", planned_stacks=["dev-network", "dev-cluster", "dev-data"],
        plans={"dev-network": summarize_plan(PLAN), "dev-cluster": {"error": "terraform init or plan failed"}},
        gate_outcome="failure", gate_log="FAILED CKV_AWS_18\n")
    assert "| `dev-network` | :white_check_mark: | 1 | 1 | 1 | 1 | :warning: destroys stateful " in comment
    assert "| `dev-cluster` | :x: failed |" in comment
    assert "| `dev-data` | not run |" in comment
    assert "`make gate`: :x: failed" in comment
    assert "FAILED CKV_AWS_18" in comment
    assert comment.rstrip().endswith("### Synth diff: `a` → `b`")


def test_the_pull_request_report_stays_within_the_comment_size_limit():
    comment = render_pr_comment(diff_markdown="x" * (2 * COMMENT_LIMIT), plans={}, planned_stacks=[],
                                gate_outcome="success")
    assert len(comment) <= COMMENT_LIMIT
    assert "cut here" in comment


def test_each_sarif_run_gets_its_own_code_scanning_category(tmp_path):
    run = {"tool": {"driver": {"name": "checkov"}}, "results": []}
    (tmp_path / "gate.sarif").write_text(json.dumps({"version": "2.1.0", "runs": [run, run]}))
    (tmp_path / "other.sarif").write_text(json.dumps({"version": "2.1.0", "runs": [
        {**run, "automationDetails": {"id": "kept/"}}]}))
    label_sarif_runs(tmp_path)
    gate = json.loads((tmp_path / "gate.sarif").read_text())
    assert [r["automationDetails"]["id"] for r in gate["runs"]] == ["checkov/gate/0/", "checkov/gate/1/"]
    assert json.loads((tmp_path / "other.sarif").read_text())["runs"][0]["automationDetails"]["id"] == "kept/"


def test_the_fixture_folders_are_what_the_diff_reads():
    assert set(load_stacks(BASE)) == set(load_stacks(HEAD)) == {"dev-network", "dev-cluster", "dev-storage"}
