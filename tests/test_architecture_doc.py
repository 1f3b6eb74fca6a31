"""docs/architecture.md is generated from the synthesized stacks and the environment files (tools/report/
architecture.py): it must be current, complete and reproducible."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mermaid_layout import Flowchart, flowcharts, parse
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


def plain(label: str) -> str:
    """A label without its line breaks and spaces: how it compares whatever the wrapping."""
    return re.sub(r"<br/>|\s", "", label)


def charts_of(document: str, environment: str, title: str) -> list[Flowchart]:
    """The diagrams of one section (``### title``) of one environment."""
    part = section(document, environment)
    match = re.search(rf"^### {re.escape(title)}\n(.*?)(?=^### |\Z)", part, re.M | re.S)
    assert match, f"{environment}: no section {title}"
    found = [parse(block, title) for block in re.findall(r"^```mermaid\n(.*?)^```$", match.group(1), re.M | re.S)]
    assert found, f"{environment}: no diagram in {title}"
    return found


def edge_labels(charts: list[Flowchart], source: str, target: str) -> list[str]:
    """The labels (line breaks and spaces removed) of the edges between nodes whose ids match the patterns."""
    return [plain(e.label) for chart in charts for e in chart.edges
            if re.fullmatch(source, e.source) and re.fullmatch(target, e.target)]


def node_label(charts: list[Flowchart], identifier: str) -> str:
    labels = [plain(chart.nodes[n].label) for chart in charts for n in chart.nodes if re.fullmatch(identifier, n)]
    assert labels, f"no node {identifier}"
    return labels[0]


def test_the_document_draws_every_node_pool_and_lists_every_namespace_and_release_of_every_environment(
        environments, stacks, generated):
    grouped = stacks_by_environment(stacks, list(environments))
    for name, environment in environments.items():
        part = section(generated, name)
        pools = charts_of(generated, name, "Node pools and GPU sharing")
        for pool in environment.node_pools:
            assert node_label(pools, f"pool_{pool.replace('-', '_')}").startswith(plain(f"{pool}: ")), \
                f"{name}: pool {pool} not drawn"
        releases = [r for stack in grouped[name].values() for r in (stack.get("resource") or {})
                    .get("helm_release", {}).values()]
        namespaces = {body["metadata"]["name"] for stack in grouped[name].values()
                      for body in (stack.get("resource") or {}).get("kubernetes_namespace_v1", {}).values()}
        for namespace in namespaces | {r["namespace"] for r in releases}:
            assert f"| `{namespace}` |" in part, f"{name}: namespace {namespace} not listed"
        for release in releases:
            assert f"| `{release['name']}` | `{release['chart']}` | `{release['version']}` |" in part
            assert re.search(rf"^\| `{re.escape(release['namespace'])}` \|.*`{re.escape(release['name'])}`", part,
                             re.M), f"{name}: release {release['name']} not listed with its namespace"


def test_every_workload_is_drawn_with_the_release_that_carries_it_and_the_pool_it_runs_on(environments,
                                                                                         generated):
    for name, environment in environments.items():
        charts = charts_of(generated, name, "Workloads and node pools")
        for deployment, settings in environment.workloads.inference.deployments.items():
            if settings.enabled:
                workload = f"wl_inference_{deployment.replace('-', '_')}"
                assert edge_labels(charts, r"rel_\w+", workload) == [""], (name, deployment)
                assert edge_labels(charts, workload, f"pool_{settings.placement.pool.replace('-', '_')}") == [""]


def test_the_request_flow_runs_from_the_load_balancers_to_each_model_and_from_the_agents_to_their_model(
        environments, generated):
    for name, environment in environments.items():
        charts = charts_of(generated, name, "Request flow")
        for deployment, settings in environment.workloads.inference.deployments.items():
            if settings.enabled:
                labels = edge_labels(charts, r"lb_inference_\w+", f"wl_inference_{deployment.replace('-', '_')}")
                assert labels, f"{name}: no load balancer reaches {deployment}"
                if settings.route.host:
                    assert all(label.startswith(settings.route.host) for label in labels if label), labels
        assert 'subgraph flow_inference["namespace inference, Linkerd mesh' in "\n".join(
            line.strip() for line in section(generated, name).splitlines())
        target = f"wl_inference_{environment.workloads.agents.llm_deployment.replace('-', '_')}"
        assert edge_labels(charts, r"callers_agentic_\w+", target) == ["OPENAI_BASE_URL"], name


def test_the_data_stores_show_who_reads_and_writes_each_store_beside_it(environments, generated):
    for name in environments:
        charts = charts_of(generated, name, "Data stores")
        assert edge_labels(charts, "id_mlops_mlflow__s3_artifacts", "s3_artifacts") == ["read-write"]
        assert edge_labels(charts, "id_inference_inference_server__s3_model_registry", "s3_model_registry") == ["read"]
        assert edge_labels(charts, r"rel_mlops_mlflow__rds_\w+", r"rds_\w+") == ["configuredwith"]
        for chart in charts:
            for user in (n for n in chart.nodes if "__" in n):
                assert [e.target for e in chart.edges if e.source == user] == [user.split("__")[1]], \
                    f"{name}: {user} is drawn beside one store and must use that one only"


def test_a_pod_identity_role_without_a_data_store_policy_is_named_but_not_drawn(environments, generated):
    for name in environments:
        part = section(generated, name)
        assert "kube-system/aws-load-balancer-controller" in part[part.index("### Data stores"):]
        for chart in charts_of(generated, name, "Data stores"):
            assert not any("aws-load-balancer-controller" in plain(n.label) for n in chart.nodes.values())


def test_the_document_is_reproducible_and_free_of_machine_paths_and_timestamps(environments, synth_outdir, stacks,
                                                                                generated):
    again = render_architecture(list(reversed(list(environments.values()))), load_manifest(synth_outdir),
                                dict(reversed(list(stacks.items()))))
    assert again == generated
    assert str(synth_outdir) not in generated and "/tmp/" not in generated and "/home/" not in generated
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", generated)


SECTIONS = ("Network", "Node pools and GPU sharing", "Workloads and node pools", "Data stores", "Request flow",
            "Deployment pipeline", "Monitoring flows")


def test_every_mermaid_diagram_parses_as_a_flowchart_and_every_section_has_one(environments, generated):
    assert flowcharts(generated)  # parse() refuses a line it does not understand and unbalanced subgraphs
    for name in environments:
        for title in SECTIONS:
            charts_of(generated, name, title)


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
    end = part.find("\n### ", start + 4)
    return part[start:end if end > 0 else len(part)]


def test_the_pipeline_draws_each_link_from_a_commit_to_a_pod_from_the_resource_that_makes_it(
        environments, stacks, generated):
    for name, environment in environments.items():
        if environment.delivery is None:
            continue
        charts = charts_of(generated, name, "Deployment pipeline")
        repositories = {r["name"] for r in stacks[f"{name}-delivery"]["resource"]["aws_ecr_repository"].values()}
        for repository in repositories:
            assert edge_labels(charts, r"role_delivery_image_push_role_\w+", f"ecr_{repository.replace('/', '_')}") \
                == ["push"], (name, repository)
        gitops_role = r"role_delivery_gitops_pull_request_role_\w+"
        assert plain("assumed by GitHub Actions ref:refs/heads/main") in node_label(charts, gitops_role)
        assert edge_labels(charts, gitops_role, "secret_mlops_platform_gitops_github_app") == ["GetSecretValue"]
        updates = environment.platform.gitops.image_updates.value
        tags_file = r"file_\w+_image_tags_yaml"
        assert edge_labels(charts, "secret_mlops_platform_gitops_github_app", tags_file) == [
            plain(f"GitHub App: {updates}")]
        assert edge_labels(charts, tags_file, "app_agent_runtimes") == ["imagetags"]
        for runtime, settings in environment.workloads.agents.runtimes.items():
            assert edge_labels(charts, "app_agent_runtimes", f"wl_agentic_{runtime}") == ["sync"]
            assert plain(f"image from ECR {settings.image_repository}") in node_label(charts, f"wl_agentic_{runtime}")


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
        charts = charts_of(generated, name, "Monitoring flows")
        assert edge_labels(charts, "fluent_bit", "log_log_group_containers") == ["PutLogEvents"]
        assert edge_labels(charts, "log_log_group_containers", "grafana") == ["LogsInsights"]
        assert edge_labels(charts, "dcgm", "prometheus") == [plain("ServiceMonitor release=kube-prometheus-stack")]
        assert edge_labels(charts, "grafana", "dash_workloads_workload_logs") == ["provisioned"]


def test_the_control_plane_logs_go_to_the_cluster_log_group_only(environments, stacks, generated):
    for name in environments:
        cluster = next(iter(stacks[f"{name}-cluster"]["resource"]["aws_eks_cluster"].values()))
        targets = [chart.nodes[e.target].label for chart in charts_of(generated, name, "Monitoring flows")
                   for e in chart.edges if e.source == "control_plane"]
        assert [plain(t) for t in targets] == [plain(f"CloudWatch Logs /aws/eks/{cluster['name']}/cluster")], name
