"""The deploy verification: on readings of a cluster (``kubectl get ... -o json``) it passes only when every
platform workload is rolled out, the root application is Synced and Healthy and each GPU node advertises what its
pool promises; otherwise it names each thing that is not ready, and the command exits non-zero."""

import io
import json
from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter

from platform_config.gpu_sharing import node_resources
from platform_config.models import NodePool
from tools.verify_deploy.__main__ import wait_until_ready
from tools.verify_deploy.checks import ClusterState, problems, workload_problem

READINGS = Path(__file__).parent / "fixtures" / "verify_deploy"


@pytest.fixture(scope="module")
def environment(environments):
    """dev, with the node pools the readings were recorded against."""
    pools = TypeAdapter(dict[str, NodePool]).validate_python(
        yaml.safe_load((READINGS / "node_pools.yaml").read_text()))
    return environments["dev"].model_copy(update={"node_pools": pools})


def reading(case):
    def items(name):
        return json.loads((READINGS / case / f"{name}.json").read_text())["items"]
    return ClusterState(workloads=items("workloads"), applications=items("applications"), nodes=items("nodes"))


def test_a_cluster_where_everything_is_ready_passes(environment):
    assert problems(reading("ready"), environment) == []


def test_the_ready_reading_holds_what_the_other_cases_need(environment):
    """Guards the fixtures: the ready reading has GPU nodes of every GPU pool advertising exactly the promise, and
    a not-ready workload outside the platform's namespaces (which must be ignored)."""
    state = reading("ready")
    by_pool = {n["metadata"]["labels"]["mlops-platform/pool"]: n for n in state.nodes}
    for name, pool in environment.gpu_pools().items():
        allocatable = by_pool[name]["status"]["allocatable"]
        assert {r: int(allocatable[r]) for r in node_resources(pool)} == node_resources(pool)
    assert any(workload_problem(w) for w in state.workloads)


def test_workloads_still_rolling_out_and_an_unhealthy_root_application_are_named(environment):
    found = problems(reading("not_ready"), environment)
    assert len(found) == 4, found
    assert any(p.startswith("deployment inference/vllm:") and "1 updated" in p and "3 total of 2" in p for p in found)
    assert any(p.startswith("daemonset logging/fluent-bit:") and "2 ready" in p for p in found)
    assert any(p.startswith("statefulset monitoring/prometheus-kube-prometheus-stack-prometheus:") for p in found)
    assert any(p.startswith("application argocd/platform-root: OutOfSync and Degraded") for p in found)


def test_gpu_nodes_that_do_not_advertise_their_pools_promise_are_named(environment):
    found = problems(reading("gpu_resources_missing"), environment)
    promised = {name: node_resources(pool) for name, pool in environment.gpu_pools().items()}
    expected = {f"(pool a100-timeslice): advertises nvidia.com/gpu 8, the pool promises "
                f"{promised['a100-timeslice']['nvidia.com/gpu']}"}
    expected |= {f"(pool a100-mig): advertises {resource} 0, the pool promises {count}"
                 for resource, count in promised["a100-mig"].items()}
    assert {p.split(" ", 2)[2] for p in found} == expected


def test_missing_applications_are_not_ready(environment):
    state = reading("ready")
    assert problems(ClusterState(state.workloads, [], state.nodes), environment) == [
        "application argocd/agent-runtimes: does not exist", "application argocd/inference-servers: does not exist",
        "application argocd/platform-root: does not exist"]


def test_the_command_waits_and_passes_once_the_cluster_becomes_ready(environment):
    readings = iter([reading("not_ready"), reading("gpu_resources_missing"), reading("ready")])
    out, slept = io.StringIO(), []
    code = wait_until_ready(environment, lambda: next(readings), timeout=600, interval=30,
                            clock=lambda: 0.0, sleep=slept.append, out=out)
    assert code == 0
    assert slept == [30, 30]


def test_the_command_fails_after_the_timeout_and_prints_what_is_not_ready(environment):
    times = iter([0.0, 400.0, 901.0])
    out = io.StringIO()
    code = wait_until_ready(environment, lambda: reading("not_ready"), timeout=900, interval=30,
                            clock=lambda: next(times), sleep=lambda _: None, out=out)
    assert code == 1
    report = out.getvalue().split("not ready after 900 s (4 problem(s)):\n", 1)[1]
    assert report.splitlines() == [f"  {p}" for p in problems(reading("not_ready"), environment)]
