"""One reviewed snapshot per stack: any change to the synthesized Terraform, including a renamed construct id
(which Terraform would destroy and recreate), shows up as a snapshot diff. A new environment file needs its
snapshots written once. After a deliberate change: `make test ARGS=--snapshot-update`, then review the diff of
tests/__snapshots__/ like code."""

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from tests_support import ENVIRONMENT_NAMES

LAYERS = ("delivery", "network", "cluster", "data", "platform", "workloads")
#: Every environment's layers and the repository's github stack.
STACKS = [f"{env}-{layer}" for env in ENVIRONMENT_NAMES for layer in LAYERS] + ["github"]


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("stack_name", STACKS)
def test_synthesized_stack_matches_its_reviewed_snapshot(stacks, snapshot_json, stack_name):
    assert stacks[stack_name] == snapshot_json


def test_every_synthesized_stack_has_a_snapshot_test(stacks):
    assert sorted(stacks) == sorted(STACKS)
