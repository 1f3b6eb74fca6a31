"""Grafana's view of the workloads' logs: the CloudWatch data source and the dashboard that puts the inference and
training logs (CloudWatch Logs Insights, the group Fluent Bit writes) next to the GPU metrics (DCGM exporter).

Both are values of kube-prometheus-stack's grafana subchart, computed here because they name the environment's
region and log group. Grafana reaches CloudWatch with the AWS SDK's default credential chain, which reads the EKS
Pod Identity credentials of its service account (the ``grafana`` workload identity: Logs Insights queries on the
workloads' log groups, nothing else).
"""

from __future__ import annotations

import json
from typing import Any

CLOUDWATCH_DATASOURCE_UID = "cloudwatch-logs"
PROMETHEUS_DATASOURCE_UID = "prometheus"
DASHBOARD_UID = "mlops-workload-logs"
#: The dashboard provider (folder) the dashboard is provisioned into: helm-values/kube-prometheus-stack declares it.
DASHBOARD_PROVIDER = "workloads"
#: The namespaces whose logs the dashboard shows, each beside the GPU activity of its pods.
LOGGED_NAMESPACES = ("inference", "training")


def cloudwatch_datasource(*, region: str, log_group_name: str, log_group_arn: str) -> dict[str, Any]:
    """The provisioned CloudWatch data source, with the workloads' log group as its default for log queries."""
    return {"name": "CloudWatch Logs", "uid": CLOUDWATCH_DATASOURCE_UID, "type": "cloudwatch", "access": "proxy",
            "editable": False,
            "jsonData": {"authType": "default", "defaultRegion": region,
                         "logGroups": [{"arn": log_group_arn, "name": log_group_name}]}}


def _logs_panel(panel_id: int, namespace: str, log_group: dict[str, str], y: int) -> dict[str, Any]:
    query = (f"fields @timestamp, kubernetes.pod_name, kubernetes.container_name, log"
             f" | filter kubernetes.namespace_name = '{namespace}' | sort @timestamp desc | limit 500")
    datasource = {"type": "cloudwatch", "uid": CLOUDWATCH_DATASOURCE_UID}
    return {"id": panel_id, "type": "logs", "title": f"{namespace} logs",
            "description": f"Container logs of the {namespace} namespace, shipped by Fluent Bit to CloudWatch Logs.",
            "datasource": datasource, "gridPos": {"x": 0, "y": y, "w": 14, "h": 10},
            "targets": [{"refId": "A", "datasource": datasource, "queryMode": "Logs", "queryLanguage": "CWLI",
                         "region": "default", "id": "", "expression": query, "logGroups": [log_group],
                         "statsGroups": []}],
            "options": {"showTime": True, "wrapLogMessage": True, "sortOrder": "Descending",
                        "enableLogDetails": True}}


def _gpu_panel(panel_id: int, namespace: str, y: int) -> dict[str, Any]:
    datasource = {"type": "prometheus", "uid": PROMETHEUS_DATASOURCE_UID}
    # The DCGM exporter labels a GPU (or MIG slice) held by a pod with the pod's namespace and name. Whole and
    # time-sliced GPUs report GPU_UTIL; MIG slices report only the graphics-engine activity.
    targets = [
        {"refId": "A", "datasource": datasource, "range": True,
         "expr": f"DCGM_FI_DEV_GPU_UTIL{{exported_namespace=\"{namespace}\"}}",
         "legendFormat": "{{exported_pod}} GPU {{gpu}}"},
        {"refId": "B", "datasource": datasource, "range": True,
         "expr": f"100 * DCGM_FI_PROF_GR_ENGINE_ACTIVE{{exported_namespace=\"{namespace}\", GPU_I_PROFILE!=\"\"}}",
         "legendFormat": "{{exported_pod}} {{GPU_I_PROFILE}}"},
    ]
    return {"id": panel_id, "type": "timeseries", "title": f"{namespace} GPU activity (DCGM)",
            "description": f"GPU utilization (whole and time-sliced GPUs) and MIG slice activity of {namespace} pods.",
            "datasource": datasource, "gridPos": {"x": 14, "y": y, "w": 10, "h": 10}, "targets": targets,
            "fieldConfig": {"defaults": {"unit": "percent", "min": 0, "max": 100}, "overrides": []}}


def workload_logs_dashboard(*, log_group_name: str, log_group_arn: str) -> dict[str, Any]:
    """One row per logged namespace: its logs on the left, the GPU activity of its pods on the right."""
    log_group = {"arn": log_group_arn, "name": log_group_name}
    panels = []
    for row, namespace in enumerate(LOGGED_NAMESPACES):
        panels.append(_logs_panel(2 * row + 1, namespace, log_group, 10 * row))
        panels.append(_gpu_panel(2 * row + 2, namespace, 10 * row))
    return {"uid": DASHBOARD_UID, "title": "Workload logs and GPUs", "tags": ["logs", "gpu", "mlops-platform"],
            "timezone": "utc", "editable": False, "refresh": "1m", "schemaVersion": 39, "version": 1,
            "time": {"from": "now-1h", "to": "now"}, "templating": {"list": []}, "annotations": {"list": []},
            "panels": panels}


def grafana_values(*, region: str, log_group_name: str, log_group_arn: str, service_account: str) -> dict[str, Any]:
    """The grafana subchart's computed values: service account (bound to the Pod Identity role), data source and
    the dashboard (as JSON text, the form the chart's ``dashboards.<provider>.<name>.json`` takes)."""
    dashboard = workload_logs_dashboard(log_group_name=log_group_name, log_group_arn=log_group_arn)
    return {"grafana": {
        "serviceAccount": {"create": True, "name": service_account},
        "additionalDataSources": [cloudwatch_datasource(region=region, log_group_name=log_group_name,
                                                        log_group_arn=log_group_arn)],
        "dashboards": {DASHBOARD_PROVIDER: {"workload-logs": {"json": json.dumps(dashboard, indent=2)}}},
    }}
