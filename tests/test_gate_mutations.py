"""Every one-change defect of tests/gate_mutations.py fails the gate, which names the check and the resource.

One gate process gates the real synth and every mutant (a copy of it with one change); the real synth must pass
and must not already report what each mutant must make the gate report.
"""

from __future__ import annotations

import pytest
from gate_mutations import MUTANTS

AREAS = {"IAM", "network", "data", "cluster access", "in-cluster security", "stack integrity"}


def test_the_catalogue_covers_every_area_with_at_least_30_defects():
    assert {m.area for m in MUTANTS} == AREAS
    assert len({m.name for m in MUTANTS}) == len(MUTANTS) >= 30


@pytest.mark.parametrize("name", [m.name for m in MUTANTS])
def test_each_defect_fails_the_gate_naming_its_check_and_resource(mutation_runs, name):
    run, expected = mutation_runs.mutants[name]
    real = mutation_runs.real
    assert real.exit_code == 0, real.stdout
    assert run.summary is not None, run.output
    assert run.exit_code == 1
    for kind, what, stack, resource in expected:
        if kind == "check":
            assert (what, stack, resource) not in real.failures()
            assert (what, stack, resource) in run.failures(), run.stdout
            assert f"FAILED {what} {stack} {resource}" in run.stdout
        else:
            assert (what, stack) in run.problem_kinds(), run.stdout
            assert (what, stack) not in real.problem_kinds()
