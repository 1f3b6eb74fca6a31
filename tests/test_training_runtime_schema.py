"""The training runtimes we emit against the CRD schema of the pinned Kubeflow Trainer: the API server prunes every
field its structural schema does not list, silently, so a runtime setting outside the schema does nothing.

The schema of ``spec.mlPolicy`` at the pinned version is kept as data (tests/fixtures/schemas, with its source);
the check is strict like the pruning: an unknown field anywhere under mlPolicy is a finding.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from platform_config.helm_values import chart_catalogue
from tests_support import resources

SCHEMA_FILE = Path(__file__).parent / "fixtures" / "schemas" / "kubeflow-trainer-mlpolicy.yaml"
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int}


@pytest.fixture(scope="module")
def trainer_schema() -> dict:
    return yaml.safe_load(SCHEMA_FILE.read_text())


def pruned_or_invalid(value, schema: dict, path: str) -> list[str]:
    """What the API server would drop (unknown fields) or reject (wrong type, value outside the enum, a missing
    required field) in ``value`` under a structural ``schema``."""
    expected = TYPES[schema["type"]]
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        return [f"{path}: {type(value).__name__} where the schema has {schema['type']}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} not one of {schema['enum']}"]
    problems = []
    if expected is dict:
        known = schema.get("properties", {})
        problems += [f"{path}.{key}: not in the schema, pruned" for key in value if key not in known]
        problems += [f"{path}.{key}: required" for key in schema.get("required", []) if key not in value]
        problems += [p for key, item in value.items() if key in known
                     for p in pruned_or_invalid(item, known[key], f"{path}.{key}")]
    if expected is list:
        problems += [p for index, item in enumerate(value)
                     for p in pruned_or_invalid(item, schema["items"], f"{path}[{index}]")]
    return problems


def ml_policy_problems(runtime: dict, trainer_schema: dict) -> list[str]:
    policy = runtime["spec"]["mlPolicy"]
    problems = pruned_or_invalid(policy, trainer_schema["schema"], "spec.mlPolicy")
    chosen = [name for name in trainer_schema["exclusive_policies"] if name in policy]
    if len(chosen) > 1:
        problems.append(f"spec.mlPolicy: {', '.join(chosen)}: only one of the policies can be configured")
    return problems


def training_runtimes(stack: dict) -> list[dict]:
    found = []
    for release in resources(stack, "helm_release").values():
        if release["chart"] != "raw":
            continue
        found += [manifest for manifest in yaml.safe_load(release["values"][0])["resources"]
                  if manifest["kind"] in ("ClusterTrainingRuntime", "TrainingRuntime")]
    return found


def test_the_schema_on_file_is_the_one_of_the_pinned_trainer(trainer_schema):
    assert trainer_schema["trainer_version"] == chart_catalogue()["kubeflow-trainer"].version, (
        f"{SCHEMA_FILE.name} describes Trainer {trainer_schema['trainer_version']}: refresh it from the CRD of the "
        "pinned chart version")


def test_every_training_runtime_we_emit_keeps_all_its_ml_policy_fields_under_the_pinned_trainer(stacks,
                                                                                               trainer_schema):
    runtimes = {(name, r["metadata"]["name"]): r for name, stack in stacks.items() if name.endswith("-workloads")
                for r in training_runtimes(stack)}
    assert runtimes, "no training runtime found in the workloads stacks"
    problems = {key: ml_policy_problems(runtime, trainer_schema) for key, runtime in runtimes.items()}
    assert {key: found for key, found in problems.items() if found} == {}


def test_a_torch_runtime_with_num_proc_per_node_is_found_pruned(trainer_schema):
    """The defect the check exists for: ``mlPolicy.torch.numProcPerNode`` is not a field of Trainer 2.3.0."""
    runtime = {"spec": {"mlPolicy": {"numNodes": 1, "torch": {"numProcPerNode": "auto"}}}}
    assert ml_policy_problems(runtime, trainer_schema) == ["spec.mlPolicy.torch.numProcPerNode: not in the schema, "
                                                           "pruned"]


@pytest.mark.parametrize(("policy", "finding"), [
    ({"numNodes": "2"}, "spec.mlPolicy.numNodes: str where the schema has integer"),
    ({"mpi": {"mpiImplementation": "MPICH"}}, "spec.mlPolicy.mpi.mpiImplementation: 'MPICH' not one of"),
    ({"torch": {"envInjection": {"targets": [{"jobName": "node"}]}}},
     "spec.mlPolicy.torch.envInjection.targets[0].containerNames: required"),
    ({"torch": {}, "mpi": {}}, "spec.mlPolicy: torch, mpi: only one of the policies can be configured"),
    ({"jax": {"processes": 4}}, "spec.mlPolicy.jax.processes: not in the schema, pruned"),
])
def test_the_check_reads_types_enums_required_fields_and_the_one_policy_rule(trainer_schema, policy, finding):
    [problem] = ml_policy_problems({"spec": {"mlPolicy": policy}}, trainer_schema)
    assert problem.startswith(finding)


def test_a_valid_mpi_runtime_passes(trainer_schema):
    runtime = {"spec": {"mlPolicy": {"numNodes": 2, "mpi": {"numProcPerNode": 8, "mpiImplementation": "OpenMPI",
                                                             "runLauncherAsNode": False}}}}
    assert ml_policy_problems(runtime, trainer_schema) == []
