"""Jobs that talk to the cluster API run where the API is reachable.

The EKS endpoint is private (dev's public CIDRs are an office range, not GitHub's), so a GitHub-hosted runner cannot
plan or apply a stack whose kubernetes or helm provider calls the API. Two rules, on the workflows and on the
synthesized stacks:

- every workflow job that plans or applies such a stack runs on that environment's CodeBuild runner inside the VPC
  (``runs-on: codebuild-<project>-${{ github.run_id }}-${{ github.run_attempt }}``, the project found in the
  synthesized stacks);
- that project's runners start in the VPC's private subnets with a security group that the cluster security group
  admits on 443, and that may send to 443.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from tests_support import ENVIRONMENT_NAMES, resources
from tools.synth_diff.pipeline import runner_project, stacks_of_kind, talks_to_cluster_api

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"
RUNNER_LABEL = re.compile(r"^codebuild-\$\{\{ (?P<project>[\w.-]+) \}\}-\$\{\{ github\.run_id \}\}"
                          r"-\$\{\{ github\.run_attempt \}\}$")
LAYERS_FLAG = re.compile(r"--layers\s+(?P<kind>[\w-]+)")


def load_workflows() -> dict[str, dict]:
    return {path.stem: yaml.safe_load(path.read_text()) for path in sorted(WORKFLOWS.glob("*.yml"))}


def _scripts(job: dict) -> list[str]:
    return [step["run"].replace("\\\n", " ") for step in job.get("steps", []) if "run" in step]


def _runs_terraform_on_stacks(job: dict) -> bool:
    return any(re.search(r"terraform\b.*\b(plan|apply)\b", script) for script in _scripts(job))


def _selected_layers(workflow: dict, job: dict) -> set[str]:
    """Which kinds of stacks a job plans or applies: the ``--layers`` of the ``order`` command in its own scripts,
    or of the ``plan-matrix`` command whose output becomes its matrix. No selector means every stack."""
    kinds: set[str] = set()
    for script in _scripts(job):
        for line in script.splitlines():
            if "tools.synth_diff order" in line:
                flag = LAYERS_FLAG.search(line)
                kinds |= {flag["kind"]} if flag else {"aws", "in-cluster"}
    matrix = str((job.get("strategy") or {}).get("matrix", ""))
    if source := re.search(r"needs\.(?P<job>[\w-]+)\.outputs\.(?P<output>\w+)", matrix):
        producer = workflow["jobs"][source["job"]]
        step_output = re.search(r"steps\.(?P<step>[\w-]+)\.outputs\.(?P<name>\w+)",
                                producer["outputs"][source["output"]])
        [step] = [s for s in producer["steps"] if s.get("id") == step_output["step"]]
        script = step["run"].replace("\\\n", " ")
        variable = re.search(rf'echo "{step_output["name"]}=\$(?P<var>\w+)"', script)["var"]
        command = re.search(rf"^\s*{variable}=\$\((?P<command>.*plan-matrix.*)\)\s*$", script, re.MULTILINE)
        flag = LAYERS_FLAG.search(command["command"])
        kinds |= {flag["kind"]} if flag else {"aws", "in-cluster"}
    return kinds


def _runner_source_is_the_synthesized_project(workflow: dict, job: dict, project_expression: str) -> bool:
    """The label's project comes from ``runner-project`` (a job output) or from a matrix of ``plan-matrix --layers
    in-cluster``, which names each environment's runner project: both read the synthesized stacks."""
    if project_expression == "matrix.runner":
        return _selected_layers(workflow, {"strategy": job.get("strategy")}) == {"in-cluster"}
    source = re.fullmatch(r"needs\.(?P<job>[\w-]+)\.outputs\.(?P<output>\w+)", project_expression)
    if not source or source["job"] not in (job.get("needs") if isinstance(job.get("needs"), list)
                                           else [job.get("needs")]):
        return False
    producer = workflow["jobs"][source["job"]]
    if source["output"] not in producer.get("outputs", {}):
        return False
    step_output = re.search(r"steps\.(?P<step>[\w-]+)\.outputs\.(?P<name>\w+)", producer["outputs"][source["output"]])
    [step] = [s for s in producer["steps"] if s.get("id") == step_output["step"]]
    return bool(re.search(rf"\b{step_output['name']}=\$\(python3 -m tools\.synth_diff runner-project --env ",
                          step["run"]))


def jobs_off_the_in_vpc_runner(workflows: dict[str, dict]) -> list[str]:
    """Jobs that plan or apply stacks talking to the cluster API without running on the environment's in-VPC
    runner (each with the reason)."""
    problems = []
    for workflow_name, workflow in workflows.items():
        for job_name, job in workflow["jobs"].items():
            if not _runs_terraform_on_stacks(job):
                continue
            if "in-cluster" not in _selected_layers(workflow, job):
                continue
            label = RUNNER_LABEL.match(str(job.get("runs-on", "")))
            if not label:
                problems.append(f"{workflow_name}.{job_name} plans or applies in-cluster stacks on "
                                f"{job.get('runs-on')!r}, not on codebuild-<project>-<run id>-<run attempt>")
            elif not _runner_source_is_the_synthesized_project(workflow, job, label["project"]):
                problems.append(f"{workflow_name}.{job_name}: the runner project {label['project']} is not the one "
                                "found in the synthesized stacks (runner-project / plan-matrix --layers in-cluster)")
    return problems


def test_every_job_that_plans_or_applies_an_in_cluster_stack_runs_on_the_environments_in_vpc_runner():
    workflows = load_workflows()
    assert jobs_off_the_in_vpc_runner(workflows) == []
    assert {f"{w}.{j}" for w, wf in workflows.items() for j, job in wf["jobs"].items()
            if _runs_terraform_on_stacks(job) and "in-cluster" in _selected_layers(wf, job)} \
        == {"deploy.in-cluster", "plan.plan-in-cluster", "plan.plan-in-cluster-protected"}


@pytest.mark.parametrize(("workflow", "job", "break_it"), [
    ("deploy", "in-cluster", lambda job: job.update({"runs-on": "ubuntu-latest"})),
    ("plan", "plan-in-cluster", lambda job: job.update({"runs-on": "ubuntu-latest"})),
    ("plan", "plan-in-cluster-protected", lambda job: job.update({"runs-on": "ubuntu-latest"})),
    ("deploy", "aws-layers", lambda job: [step.update(run=step["run"].replace(" --layers aws", ""))
                                          for step in job["steps"] if "--layers aws" in step.get("run", "")]),
    ("deploy", "in-cluster", lambda job: job.update(
        {"runs-on": "codebuild-${{ needs.aws-layers.outputs.role }}-${{ github.run_id }}-${{ github.run_attempt }}"})),
], ids=["deploy on a github-hosted runner", "plan on a github-hosted runner",
        "approved plan on a github-hosted runner",
        "aws job that takes every stack", "label naming another output than the runner project"])
def test_the_runner_rule_finds_a_job_put_back_on_the_wrong_runner(workflow, job, break_it):
    workflows = copy.deepcopy(load_workflows())
    workflows["deploy"]["jobs"]["aws-layers"]["outputs"]["role"] = "${{ steps.target.outputs.role }}"
    break_it(workflows[workflow]["jobs"][job])
    assert jobs_off_the_in_vpc_runner(workflows) != []


def test_the_layer_selection_splits_each_environments_stacks_by_whether_they_talk_to_the_cluster_api(stacks):
    names = sorted(stacks)
    in_cluster = stacks_of_kind(stacks, names, "in-cluster")
    aws = stacks_of_kind(stacks, names, "aws")
    assert sorted(in_cluster + aws) == names
    assert all("kubernetes" in stacks[n]["provider"] or "helm" in stacks[n]["provider"] for n in in_cluster)
    assert not any(talks_to_cluster_api(stacks[n]) for n in aws)


# --- the runner reaches the cluster API ---------------------------------------------------------------------------

def _resource_by_reference(stack: dict, reference: str) -> tuple[str, str, dict]:
    match = re.fullmatch(r"\$\{(?P<type>\w+)\.(?P<name>[\w-]+)\.[\w\[\]\.]+\}", reference)
    return match["type"], match["name"], resources(stack, match["type"])[match["name"]]


def _covers_443(rule: dict) -> bool:
    if rule["ip_protocol"] == "-1":
        return True
    return rule["ip_protocol"] in ("tcp", "6") and rule["from_port"] <= 443 <= rule["to_port"]


def cluster_api_unreachable_from_runner(stack: dict, vpc_cidr: str) -> list[str]:
    """Why the in-VPC runner of a synthesized cluster stack could not open a connection to the private API endpoint
    (empty when it can): the security-group rules both ways, the private endpoint, and the runner's subnets."""
    [project] = resources(stack, "aws_codebuild_project").values()
    [cluster_name] = resources(stack, "aws_eks_cluster")
    cluster = resources(stack, "aws_eks_cluster")[cluster_name]
    cluster_sg = f"${{aws_eks_cluster.{cluster_name}.vpc_config[0].cluster_security_group_id}}"
    [runner_sg] = project["vpc_config"]["security_group_ids"]
    problems = []
    if not cluster["vpc_config"]["endpoint_private_access"]:
        problems.append("the cluster has no private endpoint")
    if not any(r["security_group_id"] == cluster_sg and r.get("referenced_security_group_id") == runner_sg
               and _covers_443(r) for r in resources(stack, "aws_vpc_security_group_ingress_rule").values()):
        problems.append("the cluster security group admits nothing from the runner security group on 443")
    vpc = ipaddress.ip_network(vpc_cidr)
    if not any(r["security_group_id"] == runner_sg and _covers_443(r) and (
            r.get("referenced_security_group_id") == cluster_sg
            or (r.get("cidr_ipv4") and vpc.subnet_of(ipaddress.ip_network(r["cidr_ipv4"]))))
            for r in resources(stack, "aws_vpc_security_group_egress_rule").values()):
        problems.append("the runner security group may not send to the VPC on 443")
    if sorted(project["vpc_config"]["subnets"]) != sorted(cluster["vpc_config"]["subnet_ids"]):
        problems.append("the runners do not start in the cluster's private subnets")
    return problems


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_the_cluster_api_is_reachable_from_the_security_group_of_the_runner_the_workflows_select(
        synth_outdir, stacks, environments, env_name):
    project_name = runner_project(synth_outdir, env_name, list(environments))
    stack = stacks[f"{env_name}-cluster"]
    [project] = [p for p in resources(stack, "aws_codebuild_project").values() if p["name"] == project_name]
    assert project["environment"]["type"] == "LINUX_CONTAINER"
    assert cluster_api_unreachable_from_runner(stack, str(environments[env_name].network.vpc_cidr)) == []


@pytest.mark.parametrize("break_it", [
    lambda s: [s["resource"]["aws_vpc_security_group_ingress_rule"].pop(n) for n in
               list(s["resource"]["aws_vpc_security_group_ingress_rule"]) if "cluster-api-from-runners" in n],
    lambda s: [r.update(from_port=22, to_port=22) for n, r in
               s["resource"]["aws_vpc_security_group_ingress_rule"].items() if "cluster-api-from-runners" in n],
    lambda s: [r.update(cidr_ipv4="192.0.2.0/24") for n, r in
               s["resource"]["aws_vpc_security_group_egress_rule"].items() if "runners-to-https" in n],
    lambda s: [p["vpc_config"].update(subnets=p["vpc_config"]["subnets"][:1])
               for p in s["resource"]["aws_codebuild_project"].values()],
], ids=["no rule to the cluster sg", "rule on 22 only", "egress outside the vpc", "runner in one subnet only"])
def test_the_reachability_rule_fails_on_a_cluster_stack_with_the_path_broken(stacks, environments, break_it):
    stack = copy.deepcopy(stacks["prod-cluster"])
    break_it(stack)
    assert cluster_api_unreachable_from_runner(stack, str(environments["prod"].network.vpc_cidr)) != []


def test_the_runners_take_only_queued_workflow_jobs_of_the_delivery_repository(stacks, environments):
    for env_name, environment in environments.items():
        stack = stacks[f"{env_name}-cluster"]
        [project_name] = resources(stack, "aws_codebuild_project")
        [webhook] = resources(stack, "aws_codebuild_webhook").values()
        assert webhook["project_name"] == f"${{aws_codebuild_project.{project_name}.name}}"
        assert [[f["pattern"] for f in group["filter"]] for group in webhook["filter_group"]] == \
            [["WORKFLOW_JOB_QUEUED"]]
        project = resources(stack, "aws_codebuild_project")[project_name]
        assert project["source"]["location"] == f"https://github.com/{environment.delivery.github_repository}.git"
        assert project["source"]["auth"]["type"] == "CODECONNECTIONS"
