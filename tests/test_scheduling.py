"""The scheduling feasibility check refuses GPU workloads that cannot be placed, naming workload, resource and
the pools considered (pure Python, no synth)."""

import pytest
import yaml

from platform_config.loader import DEFAULT_ENV_DIR
from platform_config.models import Environment
from platform_config.scheduling import GpuDemand, SchedulingError, check_schedulable, demands_from_training_queues

GPU_TOLERATION = ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},)


def demand(workload, resource, *, count=1, replicas=1, pool="a100-mig", tolerations=GPU_TOLERATION):
    return GpuDemand(workload=workload, replicas=replicas, requests={resource: count},
                     node_selector={"mlops-platform/pool": pool}, tolerations=tolerations)


#: The pools and training queues the numbers below are worked out for, set over the committed dev file so that
#: editing dev's pools changes no expectation here. p4de.24xlarge and p5.48xlarge carry 8 GPUs.
WORKED_EXAMPLE = {
    "a100-timeslice": {"min_size": 0, "desired_size": 0, "max_size": 1,
                       "gpu": {"model": "A100-80GB", "sharing": {"mode": "time-slicing", "replicas": 4}}},
    "a100-mig": {"min_size": 0, "desired_size": 0, "max_size": 1,
                 "gpu": {"model": "A100-80GB",
                         "sharing": {"mode": "mig", "layout": {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}}}},
    "h100-timeslice": {"min_size": 0, "desired_size": 0, "max_size": 1,
                       "gpu": {"model": "H100-80GB", "sharing": {"mode": "time-slicing", "replicas": 2}}},
}
WORKED_TEAMS = {"research": {"gpus": {"a100-timeslice": 16, "h100-timeslice": 8}},
                "applied-ml": {"gpus": {"a100-timeslice": 8, "h100-timeslice": 8}}}


@pytest.fixture(scope="module")
def worked():
    """dev with the pools of WORKED_EXAMPLE (a100-timeslice 32 nvidia.com/gpu per node, a100-mig 8 / 8 / 16
    slices of 3g.40gb / 2g.20gb / 1g.10gb per node, h100-timeslice 16 per node; one node each at most)."""
    data = yaml.safe_load((DEFAULT_ENV_DIR / "dev.yaml").read_text())
    for name, settings in WORKED_EXAMPLE.items():
        data["node_pools"][name] |= settings
    data["workloads"]["training"]["teams"] = WORKED_TEAMS
    return Environment.model_validate(data)


def problems(env, *demands):
    with pytest.raises(SchedulingError) as refused:
        check_schedulable(env, demands)
    return refused.value.problems


def test_a_request_that_fits_a_pool_at_its_max_size_passes(worked):
    dev = worked  # a100-mig: max 1 node x 8 GPUs x one 3g.40gb each
    check_schedulable(dev, [demand("inference/vllm", "nvidia.com/mig-3g.40gb", replicas=8)])


def test_a_mig_profile_that_no_pool_offers_is_refused_with_the_pools_considered(worked):
    [problem] = problems(worked, demand("inference/big-model", "nvidia.com/mig-7g.80gb"))
    assert problem.startswith("inference/big-model requests nvidia.com/mig-7g.80gb x1: no pool offers it")
    assert "a100-mig offers nvidia.com/mig-1g.10gb x16/node, nvidia.com/mig-2g.20gb x8/node, " \
        "nvidia.com/mig-3g.40gb x8/node" in problem
    assert "a100-timeslice offers nvidia.com/gpu x32/node" in problem
    assert "h100-timeslice offers nvidia.com/gpu x16/node" in problem


def test_more_replicas_than_the_pool_can_hold_are_refused_with_what_each_workload_needs(worked):
    [problem] = problems(worked,
                         demand("inference/vllm", "nvidia.com/mig-3g.40gb", replicas=6),
                         demand("inference/tgi", "nvidia.com/mig-3g.40gb", replicas=3))
    assert problem == ("pool a100-mig at its max size 1 holds 8 nvidia.com/mig-3g.40gb; the workloads placed on it "
                       "need 9 (inference/vllm 6, inference/tgi 3)")


def test_a_node_selector_naming_a_pool_without_the_resource_is_refused(worked):
    [problem] = problems(worked, demand("training/job", "nvidia.com/gpu", pool="a100-mig"))
    assert "node selector mlops-platform/pool=a100-mig is not a pool offering it" in problem
    assert "pools offering it: a100-timeslice, h100-timeslice" in problem


def test_a_pod_without_the_gpu_toleration_is_refused(worked):
    [problem] = problems(worked, demand("inference/vllm", "nvidia.com/mig-3g.40gb", tolerations=()))
    assert "does not tolerate the taint nvidia.com/gpu=true:NoSchedule of pool a100-mig" in problem


def test_one_pod_larger_than_a_node_is_refused(worked):
    [problem] = problems(worked,
                         demand("training/giant", "nvidia.com/gpu", count=40, pool="a100-timeslice"))
    assert problem == ("training/giant requests nvidia.com/gpu x40 per pod: one node of pool a100-timeslice "
                       "has 32")


def test_training_queue_guarantees_count_against_the_pool_capacity(worked):
    dev = worked
    queues = demands_from_training_queues(dev)
    assert {(d.workload, d.node_selector["mlops-platform/pool"], d.replicas * d.requests["nvidia.com/gpu"])
            for d in queues} == {
        ("training queue research", "a100-timeslice", 16), ("training queue research", "h100-timeslice", 8),
        ("training queue applied-ml", "a100-timeslice", 8), ("training queue applied-ml", "h100-timeslice", 8)}
    check_schedulable(dev, queues)
    [problem] = problems(dev, *queues, demand("inference/batch", "nvidia.com/gpu", replicas=9,
                                                 pool="a100-timeslice"))
    assert problem.startswith("pool a100-timeslice at its max size 1 holds 32 nvidia.com/gpu; "
                              "the workloads placed on it need 33")
