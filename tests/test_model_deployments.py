"""Several models per engine: each model deployment gets its own server, route and share of its pool, and the
scheduling check counts every deployment (pure Python, no synth)."""

from __future__ import annotations

import copy

import pytest
import yaml
from pydantic import ValidationError

from platform_config import gpu_sharing
from platform_config.loader import DEFAULT_ENV_DIR
from platform_config.models import Environment
from platform_config.scheduling import environment_demands, scheduling_problems
from platform_config.workloads import InfrastructureRefs, inference_manifests
from tools.report.render import deployment_rows

REFS = InfrastructureRefs(model_bucket="models", file_system_id="fs-1", models_access_point_id="fsap-1",
                          database_secret_arn="arn:secret")
HOST = "llama-70b.inference.example.internal"


@pytest.fixture
def dev_data() -> dict:
    return yaml.safe_load((DEFAULT_ENV_DIR / "dev.yaml").read_text())


def with_second_vllm(data: dict, **overrides) -> dict:
    """``data`` with a second vLLM model placed like the first, on a host of its own."""
    data = copy.deepcopy(data)
    deployments = data["workloads"]["inference"]["deployments"]
    second = copy.deepcopy(deployments["vllm"])
    second.update(model={"store": "s3", "path": "llm/llama-3.1-70b-instruct"}, route={"host": HOST},
                  scaling={"replicas": 1})
    second.update(overrides)
    deployments["llama-70b"] = second
    return data


def test_a_second_vllm_model_gets_its_own_server_and_a_host_rule_on_the_shared_alb(dev_data):
    env = Environment.model_validate(with_second_vllm(dev_data))
    manifests = inference_manifests(env, REFS)
    servers = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Deployment"}
    assert {"vllm", "llama-70b"} <= set(servers)
    args = servers["llama-70b"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--served-model-name") + 1] == "llama-3.1-70b-instruct"
    [ingress] = [m for m in manifests if m["kind"] == "Ingress"]
    backends = {(rule.get("host"), path["path"]): path["backend"]["service"]["name"]
                for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}
    assert backends[(HOST, "/v1")] == "llama-70b"
    assert backends[(None, "/v1")] == "vllm"
    # the ALB tries rules in order: the host rule must come before the rule that matches every host
    assert ingress["spec"]["rules"][0]["host"] == HOST and "host" not in ingress["spec"]["rules"][-1]
    assert "inference/llama-70b" in {d.workload for d in environment_demands(env)}


def test_two_deployments_of_one_engine_on_the_same_host_are_refused(dev_data):
    data = with_second_vllm(dev_data)
    del data["workloads"]["inference"]["deployments"]["llama-70b"]["route"]
    with pytest.raises(ValidationError, match=r"vllm already serves the vllm API paths on every host: give one of "
                                              r"them its own route\.host"):
        Environment.model_validate(data)


def test_the_scheduling_check_counts_every_deployment_on_a_pool(dev_data):
    env = Environment.model_validate(dev_data)
    vllm = env.workloads.inference.deployments["vllm"]
    pool = env.node_pools[vllm.placement.pool]
    holds = pool.max_size * gpu_sharing.node_resources(pool)[vllm.placement.gpu.resource]
    used = sum(d.replicas * d.requests.get(vllm.placement.gpu.resource, 0) for d in environment_demands(env)
               if d.node_selector.get("mlops-platform/pool") == vllm.placement.pool)
    spare = holds - used
    crowded = Environment.model_validate(with_second_vllm(dev_data, scaling={"replicas": spare + 1}))
    [problem] = scheduling_problems(crowded)
    assert problem.startswith(f"pool {vllm.placement.pool} at its max size {pool.max_size} holds {holds} "
                              f"{vllm.placement.gpu.resource}; the workloads placed on it need {holds + 1}")
    assert f"inference/llama-70b {spare + 1}" in problem and "inference/vllm" in problem
    fits = Environment.model_validate(with_second_vllm(dev_data, scaling={"replicas": spare})) if spare else None
    assert fits is None or scheduling_problems(fits) == []


def test_agents_must_call_an_enabled_deployment(dev_data):
    dev_data["workloads"]["agents"]["llm_deployment"] = "nope"
    with pytest.raises(ValidationError, match=r"'nope' is not an enabled deployment; enabled: vllm"):
        Environment.model_validate(dev_data)


def test_the_report_lists_each_running_deployment_with_its_gpus_at_max(dev_data):
    env = Environment.model_validate(with_second_vllm(dev_data, scaling={"replicas": 1, "max_replicas": 3}))
    rows = {row[0]: row for row in deployment_rows(env)}
    running = {name for name, d in env.workloads.inference.deployments.items() if d.enabled}
    assert running <= set(rows)
    assert rows["llama-70b"][1] == "vllm"
    assert rows["llama-70b"][-1] == str(3 * env.workloads.inference.deployments["llama-70b"].placement.gpu.count)
    disabled = {name for name, d in env.workloads.inference.deployments.items() if not d.enabled}
    assert not disabled & set(rows)
