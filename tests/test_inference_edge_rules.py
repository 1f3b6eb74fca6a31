"""What an environment file may say about the inference edge (pure Python, no synth): a prod-tier environment
serves inference over TLS only, a certificate must be one the load balancer can use (the environment's account
and region), and every load balancer names the client networks it admits, outside the subnets of the pods when
it is internal."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from platform_config.loader import DEFAULT_ENV_DIR, EnvironmentFileError, load_environment

CERTIFICATE = "arn:aws:acm:{region}:{account}:certificate/0f1e2d3c-0000-4000-8000-000000000001"


def environment_file(tmp_path: Path, name: str, change: Callable[[dict], None]) -> Path:
    data = yaml.safe_load((DEFAULT_ENV_DIR / f"{name}.yaml").read_text())
    data = copy.deepcopy(data)
    change(data)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def problems_of(tmp_path: Path, name: str, change: Callable[[dict], None]) -> list[str]:
    with pytest.raises(EnvironmentFileError) as refused:
        load_environment(environment_file(tmp_path, name, change))
    return refused.value.problems


def exposure(data: dict, which: str) -> dict:
    return data["workloads"]["inference"][which]


CASES = {
    "a prod-tier environment without a certificate for the https api": (
        "prod", lambda d: exposure(d, "http").pop("certificate_arn"), "workloads.inference.http.certificate_arn",
        ["missing: a prod-tier environment serves inference over TLS only",
         "arn:aws:acm:us-east-1:333333333333:certificate/<id>"]),
    "a prod-tier environment without a certificate for the grpc api": (
        "prod", lambda d: exposure(d, "tcp").pop("certificate_arn"), "workloads.inference.tcp.certificate_arn",
        ["missing: a prod-tier environment serves inference over TLS only"]),
    "a certificate of another region": (
        "prod", lambda d: exposure(d, "http").update(
            certificate_arn=CERTIFICATE.format(region="eu-west-1", account="333333333333")),
        "workloads.inference.http.certificate_arn",
        ["a certificate of account 333333333333 in eu-west-1", "in its region us-east-1"]),
    "a certificate of another account": (
        "staging", lambda d: exposure(d, "tcp").update(
            certificate_arn=CERTIFICATE.format(region="us-east-1", account="111111111111")),
        "workloads.inference.tcp.certificate_arn",
        ["a certificate of account 111111111111", "the environment's account 222222222222"]),
    "a load balancer that names no client": (
        "dev", lambda d: exposure(d, "http").update(clients=[]), "workloads.inference.http.clients",
        ["names no client network"]),
    "an internal load balancer open to the subnets of the pods": (
        "prod", lambda d: exposure(d, "http").update(clients=["10.0.0.0/8"]), "workloads.inference.http.clients",
        ["10.0.0.0/8 overlaps the private subnets", "around the mesh's identity check"]),
    "an internet-facing load balancer without tls": (
        "dev", lambda d: exposure(d, "http").update(scheme="internet-facing"), "workloads.inference.http",
        ["internet-facing needs certificate_arn"]),
}


@pytest.mark.parametrize("case", CASES, ids=CASES)
def test_an_unsafe_inference_edge_is_refused_with_one_message_naming_file_field_and_reason(tmp_path, case):
    name, change, field, fragments = CASES[case]
    [problem] = problems_of(tmp_path, name, change)
    assert problem.startswith(f"{tmp_path / f'{name}.yaml'}: {field}") or problem.startswith(
        f"{name}.yaml: {field}"), problem
    for fragment in fragments:
        assert fragment in problem, problem


def test_the_tier_decides_not_the_name_a_dev_file_raised_to_the_prod_tier_must_bring_certificates(tmp_path):
    problems = problems_of(tmp_path, "dev", lambda d: d.update(tier="prod"))
    refused = [p.split(": ")[1] for p in problems if "serves inference over TLS only" in p]
    assert refused == ["workloads.inference.http.certificate_arn", "workloads.inference.tcp.certificate_arn"]


def test_without_a_certificate_a_dev_tier_environment_serves_in_clear_inside_and_says_so(tmp_path):
    env = load_environment(environment_file(tmp_path, "dev", lambda d: [exposure(d, w).pop("certificate_arn", None)
                                                                          for w in ("http", "tcp")]))
    said = [w for w in env.warnings() if "certificate_arn" in w]
    assert [w.split(" has no")[0] for w in said] == ["dev: workloads.inference.http", "dev: workloads.inference.tcp"]
    assert all("in clear" in w for w in said)


def test_an_environment_without_a_grpc_deployment_needs_no_grpc_clients_or_certificate(tmp_path):
    def no_grpc(data: dict) -> None:
        data["workloads"]["inference"]["deployments"]["triton"]["enabled"] = False
        data["workloads"]["inference"]["tcp"] = {"scheme": "internal"}

    env = load_environment(environment_file(tmp_path, "prod", no_grpc))
    assert list(env.workloads.inference.exposures()) == ["http"]
