"""`python main.py` (what `make synth` runs): bad input stops it cleanly and leaves the last output untouched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from main import replace_directory_atomically
from platform_config import gpu_sharing
from platform_config.loader import DEFAULT_ENV_DIR, load_environment
from platform_config.models import Environment

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_main(env_dir: Path, outdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "main.py"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PLATFORM_ENV_DIR": str(env_dir), "CDKTF_OUTDIR": str(outdir),
             "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"})


def prod_with(tmp_path: Path, change) -> Path:
    """An environments folder holding the committed prod file with ``change`` applied to its data."""
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    data = yaml.safe_load((DEFAULT_ENV_DIR / "prod.yaml").read_text())
    change(data)
    (env_dir / "prod.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return env_dir


def refusal_lines(result: subprocess.CompletedProcess, tmp_path: Path) -> list[str]:
    """The lines of a refused synth, after checking it refused cleanly and left the previous output alone."""
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out", "environments"]
    assert (tmp_path / "cdktf.out" / "stacks" / "prod-network" / "cdk.tf.json").read_text() == '{"previous": true}'
    return result.stderr.strip().splitlines()


def previous_output(tmp_path: Path) -> Path:
    outdir = tmp_path / "cdktf.out"
    (outdir / "stacks" / "prod-network").mkdir(parents=True)
    (outdir / "stacks" / "prod-network" / "cdk.tf.json").write_text('{"previous": true}')
    return outdir


def test_an_invalid_environment_exits_non_zero_with_one_line_per_problem_and_no_traceback(tmp_path):
    def break_two_pools(data):
        data["node_pools"]["a100-mig"]["gpu"]["sharing"]["layout"] = {"3g.40gb": 2, "1g.10gb": 1}
        data["node_pools"]["h100-timeslice"]["instance_types"] = ["p4de.24xlarge"]

    env_dir = prod_with(tmp_path, break_two_pools)
    outdir = previous_output(tmp_path)

    lines = refusal_lines(run_main(env_dir, outdir), tmp_path)

    assert lines[0].startswith("Invalid environment configuration (2 problem(s))")
    assert "prod.yaml: node_pools.a100-mig.gpu.sharing: MIG layout 3g.40gb x2 + 1g.10gb x1" in lines[1]
    assert "prod.yaml: node_pools.h100-timeslice.gpu: model H100-80GB does not match p4de.24xlarge" in lines[2]
    assert len(lines) == 3


def test_a_failed_build_leaves_the_previous_output_exactly_as_it_was(tmp_path):
    outdir = previous_output(tmp_path)

    def half_written_then_broken(scratch: Path) -> None:
        (scratch / "stacks").mkdir()
        (scratch / "manifest.json").write_text("{}")
        raise RuntimeError("synth failed half way")

    with pytest.raises(RuntimeError):
        replace_directory_atomically(outdir, half_written_then_broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out"]
    assert sorted(str(p.relative_to(outdir)) for p in outdir.rglob("*")) == [
        "stacks", "stacks/prod-network", "stacks/prod-network/cdk.tf.json"]


def test_a_successful_build_replaces_the_previous_output_whole(tmp_path):
    outdir = previous_output(tmp_path)
    replace_directory_atomically(outdir, lambda scratch: (scratch / "manifest.json").write_text("{}"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out"]
    assert [p.name for p in outdir.iterdir()] == ["manifest.json"]


def test_a_prod_protection_override_synthesizes_with_a_warning_line(tmp_path):
    env_dir = prod_with(tmp_path, lambda data: data.update(protection={
        "prevent_destroy": False, "unprotected_prod_override": "INC-4711 account move"}))
    outdir = tmp_path / "cdktf.out"

    result = run_main(env_dir, outdir)

    assert result.returncode == 0, result.stderr
    assert ("WARNING: prod: stateful resources are NOT protected from destroy "
            "(protection.unprotected_prod_override: INC-4711 account move)") in result.stderr.splitlines()
    assert sorted(p.name for p in (outdir / "stacks").iterdir()) == [
        "prod-cluster", "prod-data", "prod-delivery", "prod-network", "prod-platform", "prod-workloads"]


def offers(env) -> str:
    """What the refusal lists as the pools considered: each GPU pool with what one of its nodes advertises."""
    return "; ".join(f"{name} offers " + ", ".join(f"{resource} x{count}/node" for resource, count in
                                                   sorted(gpu_sharing.node_resources(pool).items()))
                     for name, pool in env.node_pools.items() if gpu_sharing.node_resources(pool))


def vllm_pool_holds(env) -> tuple[int, int]:
    """(max size, slices at max) of the pool vLLM is placed on, of the profile vLLM requests."""
    placement = env.workloads.inference.deployments["vllm"].placement
    pool = env.node_pools[placement.pool]
    return pool.max_size, pool.max_size * gpu_sharing.node_resources(pool)[placement.gpu.resource]


def vllm_beyond_its_pool(data: dict) -> None:
    """vLLM asks for one replica more than its pool holds at max size; deployments that could share its slices
    are off."""
    engines = data["workloads"]["inference"]["deployments"]
    for name, deployment in engines.items():
        if name != "vllm" and deployment["placement"] == engines["vllm"]["placement"]:
            deployment["enabled"] = False
    _, holds = vllm_pool_holds(Environment.model_validate(data))
    engines["vllm"]["scaling"].update(max_replicas=holds + 1)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["workloads"]["inference"]["deployments"]["vllm"]["placement"]["gpu"].update(
        resource="nvidia.com/mig-7g.80gb"),
     lambda env: "inference/vllm requests nvidia.com/mig-7g.80gb x1: no pool offers it (pools considered: "
                 f"{offers(env)})"),
    (vllm_beyond_its_pool,
     lambda env: "pool {pool} at its max size {size} holds {holds} {resource}; the workloads placed on it need "
                 "{need} (inference/vllm {need})".format(
                     pool=env.workloads.inference.deployments["vllm"].placement.pool, size=vllm_pool_holds(env)[0],
                     holds=vllm_pool_holds(env)[1], need=vllm_pool_holds(env)[1] + 1,
                     resource=env.workloads.inference.deployments["vllm"].placement.gpu.resource)),
], ids=["a mig profile no pool offers", "more replicas than the pool holds"])
def test_unschedulable_workloads_stop_the_synth_naming_workload_resource_and_pools(tmp_path, change, expected):
    env_dir = prod_with(tmp_path, change)
    outdir = previous_output(tmp_path)

    lines = refusal_lines(run_main(env_dir, outdir), tmp_path)

    refusal = expected(load_environment(env_dir / "prod.yaml"))
    assert lines[0].startswith("Workloads that cannot be scheduled")
    assert lines[1] == f"  {env_dir / 'prod.yaml'}: workloads of environment prod: {refusal}"
    # What else the same change breaks comes in the same pass (more replicas also outgrow the namespace's quota).
    assert all(line.startswith(f"  {env_dir / 'prod.yaml'}: platform.namespace_quotas.") for line in lines[2:])


def test_a_namespace_quota_too_small_for_its_workloads_stops_the_synth_naming_the_field(tmp_path):
    env_dir = prod_with(tmp_path, lambda d: d["platform"]["namespace_quotas"]["inference"].update(cpu="16"))
    outdir = previous_output(tmp_path)

    lines = refusal_lines(run_main(env_dir, outdir), tmp_path)

    assert lines[0] == ("Workloads the API server would refuse, or quotas that cannot hold them (1 problem(s)); "
                        "nothing was synthesized:")
    assert lines[1].startswith(f"  {env_dir / 'prod.yaml'}: platform.namespace_quotas.inference.cpu: ResourceQuota "
                               "requests.cpu 16 of namespace inference cannot hold the namespace's workloads at their "
                               "largest, which request ")
    assert len(lines) == 2


def test_field_problems_of_one_file_and_scheduling_problems_of_another_are_reported_in_one_pass(tmp_path):
    env_dir = prod_with(tmp_path, lambda d: d["workloads"]["inference"]["deployments"]["vllm"]["placement"]["gpu"]
                        .update(resource="nvidia.com/mig-7g.80gb"))
    dev = yaml.safe_load((DEFAULT_ENV_DIR / "dev.yaml").read_text())
    dev["account_id"] = 12345678901  # what YAML makes of an unquoted id
    dev["node_pools"]["cpu"]["max_size"] = 0
    (env_dir / "dev.yaml").write_text(yaml.safe_dump(dev, sort_keys=False))
    outdir = previous_output(tmp_path)

    lines = refusal_lines(run_main(env_dir, outdir), tmp_path)

    assert lines[0] == "Invalid environment configuration (3 problem(s)); nothing was synthesized:"
    [account, pool, scheduling] = lines[1:]
    assert account.startswith(f"  {env_dir / 'dev.yaml'}: account_id: Input should be a valid string")
    assert 'put the value in quotes, e.g. account_id: "012345678901"' in account
    assert pool.startswith(f"  {env_dir / 'dev.yaml'}: node_pools.cpu")
    assert scheduling.startswith(f"  {env_dir / 'prod.yaml'}: workloads of environment prod: inference/vllm requests "
                                 "nvidia.com/mig-7g.80gb x1: no pool offers it")
