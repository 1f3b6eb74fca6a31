"""One reviewed snapshot per stack: any change to the synthesized Terraform, including a renamed construct id
(which Terraform would destroy and recreate), shows up as a snapshot diff. Update with `--snapshot-update`."""

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

LAYERS = ("delivery", "network", "cluster", "data", "platform", "workloads")
STACKS = [f"{env}-{layer}" for env in ("dev", "staging", "prod") for layer in LAYERS]


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("stack_name", STACKS)
def test_synthesized_stack_matches_its_reviewed_snapshot(stacks, snapshot_json, stack_name):
    assert stacks[stack_name] == snapshot_json
