"""docs/architecture.md is generated from the synthesized stacks and the environment files (tools/report/
architecture.py): it must be current, complete and reproducible."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from platform_config.loader import DEFAULT_ENV_DIR, environment_files
from platform_config.report import stacks_by_environment
from tools.report.__main__ import main as report_main
from tools.report.architecture import render_architecture
from tools.report.outdir import load_manifest

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"


@pytest.fixture(scope="module")
def generated(environments, synth_outdir, stacks):
    return render_architecture(list(environments.values()), load_manifest(synth_outdir), stacks)


def section(document: str, environment: str) -> str:
    """The part of the document about one environment (``## <env>`` up to the next ``## ``)."""
    match = re.search(rf"^## {re.escape(environment)}\n(.*?)(?=^## |\Z)", document, re.M | re.S)
    assert match, f"no section for {environment}"
    return match.group(1)


def test_the_committed_architecture_document_is_what_the_generator_produces_now(environments, generated):
    if set(environments) != {p.stem for p in environment_files(DEFAULT_ENV_DIR)}:
        pytest.skip("PLATFORM_ENVS limits this session to some environments; the document describes all of them")
    assert DOCUMENT.is_file(), "docs/architecture.md is missing: run `make docs`"
    assert DOCUMENT.read_text() == generated, "docs/architecture.md is stale: run `make docs` and commit it"


def test_the_document_draws_every_node_pool_namespace_and_release_of_every_environment(environments, stacks,
                                                                                      generated):
    grouped = stacks_by_environment(stacks, list(environments))
    for name, environment in environments.items():
        part = section(generated, name)
        for pool in environment.node_pools:
            assert f'pool_{pool.replace("-", "_")}["{pool}: ' in part, f"{name}: pool {pool} not drawn"
        releases = [r for stack in grouped[name].values() for r in (stack.get("resource") or {})
                    .get("helm_release", {}).values()]
        namespaces = {body["metadata"]["name"] for stack in grouped[name].values()
                      for body in (stack.get("resource") or {}).get("kubernetes_namespace_v1", {}).values()}
        for namespace in namespaces | {r["namespace"] for r in releases}:
            assert f'["namespace {namespace}' in part, f"{name}: namespace {namespace} not drawn"
        for release in releases:
            assert f'"release {release["name"]}<br/>{release["chart"]} {release["version"]}"' in part, \
                f"{name}: release {release['name']} not drawn"
            assert f"| `{release['name']}` | `{release['chart']}` | `{release['version']}` |" in part


def test_the_request_flow_runs_from_the_load_balancers_through_the_mesh_to_inference_and_from_the_agents(
        generated):
    prod = section(generated, "prod")
    flow = prod[prod.index("### Request flow"):]
    assert 'subgraph mesh["Linkerd mesh' in flow
    assert "clients -->|HTTP| lb_inference_inference" in flow
    assert "lb_inference_inference -->|/v1| svc_inference_vllm" in flow
    assert "svc_inference_vllm --> wl_inference_vllm" in flow
    assert "lb_inference_triton_grpc --> wl_inference_triton" in flow
    assert "wl_agentic_crewai -->|OPENAI_BASE_URL| svc_inference_vllm" in flow


def test_the_data_stores_show_who_reads_and_writes_them(generated):
    data = section(generated, "prod")
    assert "id_mlops_mlflow -->|read-write| s3_artifacts" in data
    assert "id_inference_inference_server -->|read| s3_model_registry" in data
    assert "rel_mlops_mlflow -->|configured with| rds_" in data


def test_the_document_is_reproducible_and_free_of_machine_paths_and_timestamps(environments, synth_outdir, stacks,
                                                                                generated):
    again = render_architecture(list(reversed(list(environments.values()))), load_manifest(synth_outdir),
                                dict(reversed(list(stacks.items()))))
    assert again == generated
    assert str(synth_outdir) not in generated and "/tmp/" not in generated and "/home/" not in generated
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", generated)


def test_every_mermaid_diagram_is_a_flowchart_with_balanced_subgraphs(generated):
    blocks = re.findall(r"```mermaid\n(.*?)```", generated, re.S)
    assert len(blocks) == 1 + 7 * generated.count("\n### Network\n")
    for block in blocks:
        lines = [line.strip() for line in block.splitlines()]
        assert lines[0].startswith("flowchart ")
        assert sum(line.startswith("subgraph ") for line in lines) == lines.count("end")


def test_make_docs_check_reports_a_stale_document_without_writing_it(environments, synth_outdir, tmp_path, capsys):
    if set(environments) != {p.stem for p in environment_files(DEFAULT_ENV_DIR)}:
        pytest.skip("PLATFORM_ENVS limits this session to some environments; the document describes all of them")
    stale = tmp_path / "architecture.md"
    stale.write_text("# Architecture\n")
    assert report_main(["docs", "--outdir", str(synth_outdir), "--output", str(stale), "--check"]) == 1
    assert "is not what `make docs` generates" in capsys.readouterr().err
    assert stale.read_text() == "# Architecture\n"


def _flow(document: str, environment: str, title: str) -> str:
    part = section(document, environment)
    start = part.index(f"### {title}")
    return part[start:part.index("```\n", part.index("```mermaid", start) + 10)]


def _edge_pattern(source: str, label: str, target: str) -> re.Pattern:
    return re.compile(rf"^\s*{source} -->\|{re.escape(label)}\| {target}$", re.M)


def test_the_pipeline_draws_each_link_from_a_commit_to_a_pod_from_the_resource_that_makes_it(
        environments, stacks, generated):
    for name, environment in environments.items():
        if environment.delivery is None:
            continue
        flow = _flow(generated, name, "Deployment pipeline")
        repositories = {r["name"] for r in stacks[f"{name}-delivery"]["resource"]["aws_ecr_repository"].values()}
        for repository in repositories:
            assert _edge_pattern(r"role_delivery_image_push_role_\w+", "push", f"ecr_{repository.replace('/', '_')}") \
                .search(flow), (name, repository)
        gitops_role = r"role_delivery_gitops_pull_request_role_\w+"
        assert _edge_pattern(r"gh_ref_refs_heads_main", "OIDC", gitops_role).search(flow)
        assert _edge_pattern(gitops_role, "GetSecretValue",
                             "secret_mlops_platform_gitops_github_app").search(flow)
        updates = environment.platform.gitops.image_updates.value
        tags_file = r"file_\w+_image_tags_yaml"
        assert _edge_pattern("secret_mlops_platform_gitops_github_app", f"GitHub App: {updates}", tags_file) \
            .search(flow)
        assert _edge_pattern(tags_file, "image tags", "app_agent_runtimes").search(flow)
        for runtime in environment.workloads.agents.runtimes:
            assert _edge_pattern("app_agent_runtimes", "sync", f"wl_agentic_{runtime}").search(flow)
            assert re.search(rf"ecr_\w+ -->\|pull\| wl_agentic_{runtime}$", flow, re.M), (name, runtime)


def test_a_link_removed_from_the_synthesized_output_disappears_from_the_pipeline(environments, synth_outdir, stacks):
    import copy

    broken = copy.deepcopy(stacks)
    for env_name in environments:
        delivery = broken.get(f"{env_name}-delivery")
        if delivery:
            del delivery["resource"]["aws_secretsmanager_secret"]
    document = render_architecture(list(environments.values()), load_manifest(synth_outdir), broken)
    for env_name, environment in environments.items():
        if environment.delivery is not None:
            flow = _flow(document, env_name, "Deployment pipeline")
            assert "GetSecretValue" not in flow and "GitHub App:" not in flow


def test_the_monitoring_flows_connect_fluent_bit_grafana_and_the_gpu_metrics(environments, generated):
    for name in environments:
        flow = _flow(generated, name, "Monitoring flows")
        assert _edge_pattern("fluent_bit", "PutLogEvents", "log_log_group_containers").search(flow)
        assert _edge_pattern("log_log_group_containers", "Logs Insights", "grafana").search(flow)
        assert _edge_pattern("dcgm", "ServiceMonitor release=kube-prometheus-stack", "prometheus").search(flow)
        assert _edge_pattern("grafana", "provisioned", "dash_workloads_workload_logs").search(flow)
