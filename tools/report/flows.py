"""The deployment pipeline and the monitoring flows of one environment, as built: every edge is read from a
synthesized resource (an IAM trust or role policy, a Helm release's values, an Argo CD Application, a cross-stack
output), so an edge disappears from the drawing when the resource that makes it does."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from platform_config.github_oidc import parse_subject
from platform_config.report import (
    application_manifests,
    helm_releases,
    referenced_name,
    release_manifests,
    release_values,
    resources_of,
)

_REMOTE_OUTPUT = re.compile(r"^\$\{data\.terraform_remote_state\.cross-stack-reference-input-([\w-]+)\.outputs\."
                            r"([\w-]+)\}$")
_SUBJECT_KEY = "token.actions.githubusercontent.com:sub"
_ROLE_KIND_TAG = "github-actions-role"


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


class StackReader:
    """Looks things up across one environment's stacks, following cross-stack outputs."""

    def __init__(self, stacks: Mapping[str, Mapping[str, Any]], environment_name: str) -> None:
        self.stacks = stacks
        self.name = environment_name

    def layer(self, layer: str) -> Mapping[str, Any]:
        return self.stacks.get(f"{self.name}-{layer}") or {}

    def resolve(self, value: Any) -> Any:
        """A platform-layer value with a cross-stack reference replaced by what the producing stack outputs."""
        match = _REMOTE_OUTPUT.match(str(value))
        if not match:
            return value
        output = ((self.stacks.get(match.group(1)) or {}).get("output") or {}).get(match.group(2)) or {}
        return output.get("value", value)

    def release(self, layer: str, name: str) -> dict[str, Any] | None:
        for body in helm_releases(self.layer(layer)).values():
            if body.get("name") == name:
                values = release_values(body)
                return values[0] if values else {}
        return None

    def raw_objects(self, layer: str) -> Iterator[dict]:
        for body in helm_releases(self.layer(layer)).values():
            if body.get("chart") == "raw":
                yield from release_manifests(body)

    def role_policies(self, layer: str) -> dict[str, list[dict]]:
        """Role Terraform name -> the statements of its inline policies."""
        found: dict[str, list[dict]] = {}
        for body in resources_of(self.layer(layer), "aws_iam_role_policy").values():
            role = referenced_name(body.get("role"), "aws_iam_role")
            if role:
                found.setdefault(role, []).extend(json.loads(body["policy"])["Statement"])
        return found


def _subjects(role: Mapping[str, Any]) -> list[str]:
    subjects = []
    for statement in json.loads(role.get("assume_role_policy") or "{}").get("Statement", []):
        for condition in (statement.get("Condition") or {}).values():
            subjects += [_subject_label(s) for s in _as_list(condition.get(_SUBJECT_KEY) or [])]
    return sorted(subjects)


def _subject_label(sub: str) -> str:
    """What a role trusts, for a reader: the context and the workflow file and ref of the subject template."""
    parsed = parse_subject(sub)
    if parsed is None:
        return sub.split(":", 2)[2]
    return f"{parsed.context} ({parsed.workflow} from {parsed.ref})"


def delivery_edges(reader: StackReader, gitops_updates: str) -> list[tuple[tuple[str, str], tuple[str, str], str]]:
    """(source node, target node, label) of the pipeline from a commit to a running pod; nodes are (id, label)."""
    delivery = reader.layer("delivery")
    if not delivery:
        return []
    edges = []
    repositories = {f"${{aws_ecr_repository.{n}.arn}}": r["name"]
                    for n, r in resources_of(delivery, "aws_ecr_repository").items()}
    secrets = {f"${{aws_secretsmanager_secret.{n}.arn}}": s["name"]
               for n, s in resources_of(delivery, "aws_secretsmanager_secret").items()}
    policies = reader.role_policies("delivery")
    for address, role in sorted(resources_of(delivery, "aws_iam_role").items()):
        kind = (role.get("tags") or {}).get(_ROLE_KIND_TAG)
        if not kind:
            continue
        role_node = (f"role_{address}", f"IAM role {role['name']}")
        for subject in _subjects(role):
            edges.append(((f"gh_{subject}", f"GitHub Actions<br/>{subject}"), role_node, "OIDC"))
        for statement in policies.get(address, []):
            actions = _as_list(statement["Action"])
            for resource in _as_list(statement["Resource"]):
                if resource in repositories and "ecr:PutImage" in actions:
                    edges.append((role_node, (f"ecr_{repositories[resource]}", f"ECR {repositories[resource]}"),
                                  "push"))
                if resource in secrets and "secretsmanager:GetSecretValue" in actions:
                    edges.append((role_node, (f"secret_{secrets[resource]}", f"secret {secrets[resource]}"),
                                  "GetSecretValue"))
    access = {entry.get("principal_arn", "").rsplit("/", 1)[-1]
              for entry in resources_of(reader.layer("cluster"), "aws_eks_access_entry").values()}
    uses = {"deploy": "apply, verify_deploy", "plan": "plan, read-only"}
    for address, role in sorted(resources_of(delivery, "aws_iam_role").items()):
        kind = (role.get("tags") or {}).get(_ROLE_KIND_TAG)
        if role.get("name") in access and kind in uses:
            edges.append(((f"role_{address}", f"IAM role {role['name']}"), ("eks", "EKS cluster (access entry)"),
                          uses[kind]))

    root = ((reader.release("platform", "argocd-apps") or {}).get("applications") or {})
    for name, app in sorted(root.items()):
        source = app.get("source") or {}
        if source.get("repoURL"):
            edges.append(((f"git_{source['repoURL']}", f"Git {source['repoURL']}"), (f"app_{name}",
                          f"Argo CD Application {name}"), f"{source.get('path', '')} @ {source.get('targetRevision')}"))
    for application in (o for o in reader.raw_objects("workloads") if o["kind"] == "Application"):
        app_node = (f"app_{application['metadata']['name']}", f"Argo CD Application {application['metadata']['name']}")
        refs = {s["ref"]: s for s in application["spec"].get("sources", []) if s.get("ref")}
        for source in application["spec"].get("sources", []):
            for value_file in (source.get("helm") or {}).get("valueFiles") or []:
                ref, _, path = value_file.partition("/")
                git = refs.get(ref.lstrip("$"))
                if git:
                    file_node = (f"file_{git['repoURL']}_{path}", f"{path} @ {git['targetRevision']}")
                    edges.append(((f"git_{git['repoURL']}", f"Git {git['repoURL']}"), file_node, "holds"))
                    edges.append((file_node, app_node, "image tags"))
                    for secret_node in {e[1] for e in edges if e[1][0].startswith("secret_")}:
                        edges.append((secret_node, file_node, f"GitHub App: {gitops_updates}"))
        for manifest in _deployed(application):
            workload = (f"wl_{manifest['metadata'].get('namespace')}_{manifest['metadata']['name']}",
                        f"{manifest['kind']} {manifest['metadata'].get('namespace')}/{manifest['metadata']['name']}")
            edges.append((app_node, workload, "sync"))
            for image in _images(manifest):
                repository = next((r for r in repositories.values() if f"/{r}:" in image), None)
                if repository:
                    edges.append(((f"ecr_{repository}", f"ECR {repository}"), workload, "pull"))
    return edges


def _deployed(application: Mapping[str, Any]) -> list[dict]:
    return [m for m in application_manifests(application) if m["kind"] in ("Deployment", "StatefulSet", "DaemonSet")]


def _images(manifest: Mapping[str, Any]) -> list[str]:
    pod = ((manifest.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [c.get("image", "") for c in [*pod.get("initContainers", []), *pod.get("containers", [])]]


def monitoring_edges(reader: StackReader) -> list[tuple[tuple[str, str], tuple[str, str], str]]:
    """(source node, target node, label) of logs, metrics, alerts and traces."""
    edges = []
    data = reader.layer("data")
    groups = {f"${{aws_cloudwatch_log_group.{n}.{attribute}}}": (n, g["name"])
              for stack in (data, reader.layer("cluster")) for n, g in resources_of(stack, "aws_cloudwatch_log_group")
              .items() for attribute in ("name", "arn")}

    def group_node(reference: Any) -> tuple[str, str] | None:
        found = groups.get(str(reader.resolve(reference)))
        return (f"log_{found[0]}", f"CloudWatch Logs {found[1]}") if found else None

    fluent_bit = reader.release("platform", "fluent-bit")
    if fluent_bit and (target := group_node((fluent_bit.get("cloudWatchLogs") or {}).get("logGroupName"))):
        edges.append((("fluent_bit", "DaemonSet fluent-bit<br/>every node's container logs"), target,
                      "PutLogEvents"))
    stack = reader.release("platform", "kube-prometheus-stack") or {}
    grafana = stack.get("grafana") or {}
    grafana_node = ("grafana", "Grafana")
    prometheus_node = ("prometheus", "Prometheus")
    if stack:
        edges.append((prometheus_node, grafana_node, "data source"))
    for source in grafana.get("additionalDataSources") or []:
        for group in (source.get("jsonData") or {}).get("logGroups") or []:
            if target := group_node(group.get("arn")):
                edges.append((target, grafana_node, "Logs Insights"))
    for provider, dashboards in sorted((grafana.get("dashboards") or {}).items()):
        for name, dashboard in sorted(dashboards.items()):
            title = json.loads(dashboard["json"]).get("title", name) if "json" in dashboard else name
            edges.append((grafana_node, (f"dash_{provider}_{name}", f"dashboard {title}"), "provisioned"))
    operator = reader.release("platform", "gpu-operator") or {}
    monitor = (operator.get("dcgmExporter") or {}).get("serviceMonitor") or {}
    if monitor.get("enabled") and (monitor.get("additionalLabels") or {}).get("release"):
        edges.append((("dcgm", "DCGM exporter (GPU nodes)"), prometheus_node,
                      f"ServiceMonitor release={monitor['additionalLabels']['release']}"))
    alertmanager = ((stack.get("alertmanager") or {}).get("config") or {})
    if alertmanager:
        edges.append((prometheus_node, ("alertmanager", "Alertmanager"), "alerts"))
    for receiver in alertmanager.get("receivers") or []:
        for key in sorted(k for k in receiver if k.endswith("_configs")):
            edges.append((("alertmanager", "Alertmanager"), (f"rcv_{key}", key.removesuffix("_configs")),
                          receiver["name"]))
    collector = reader.release("platform", "opentelemetry-collector") or {}
    exporters = ((collector.get("config") or {}).get("exporters") or {})
    if "awsxray" in exporters:
        edges.append((("otel", "OpenTelemetry collector"), ("xray", "AWS X-Ray"), "traces"))
    if "prometheus" in exporters:
        edges.append((("otel", "OpenTelemetry collector"), prometheus_node, "metrics"))
    for cluster in resources_of(reader.layer("cluster"), "aws_eks_cluster").values():
        # EKS writes control plane logs to the group of this name only; the stack's other groups are not its
        control_plane_group = f"/aws/eks/{cluster.get('name')}/cluster"
        for address, group in resources_of(reader.layer("cluster"), "aws_cloudwatch_log_group").items():
            if cluster.get("enabled_cluster_log_types") and group.get("name") == control_plane_group:
                edges.append((("control_plane", "EKS control plane"), (f"log_{address}",
                              f"CloudWatch Logs {group['name']}"), ", ".join(cluster["enabled_cluster_log_types"])))
    return edges
