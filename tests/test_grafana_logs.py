"""Grafana reads CloudWatch Logs: the data source, the identity it reads with and the dashboard all name the log
group Fluent Bit writes, and the identity may only run Logs Insights queries on it.

References are followed through the synthesized output: the platform layer names the log group through a
cross-stack output of the data layer, which names the ``aws_cloudwatch_log_group`` resource.
"""

import json
import re

import yaml

from tests_support import resources

#: CloudWatch Logs Insights: find the groups and streams, list fields, run a query, read its results.
LOGS_INSIGHTS_READ = {"logs:DescribeLogGroups", "logs:DescribeLogStreams", "logs:GetLogGroupFields",
                      "logs:StartQuery", "logs:GetQueryResults"}
_OUTPUT_REF = re.compile(r"^\$\{data\.terraform_remote_state\.[\w-]+\.outputs\.([\w-]+)\}$")
_LOG_GROUP_REF = re.compile(r"^\$\{aws_cloudwatch_log_group\.([\w-]+)\.(arn|name)\}(:\*)?$")


def release_values(stack, name):
    [release] = [r for r in resources(stack, "helm_release").values() if r["name"] == name]
    return release, yaml.safe_load(release["values"][0])


def log_group_of(reference, data_stack):
    """The ``aws_cloudwatch_log_group`` a platform-layer reference (through a data-layer output) points at."""
    output = _OUTPUT_REF.match(reference)
    assert output, reference
    target = _LOG_GROUP_REF.match(data_stack["output"][output.group(1)]["value"])
    assert target, data_stack["output"][output.group(1)]
    return target.group(1)


def role_statements(data_stack, namespace, service_account):
    """The policy statements of the role bound to ``namespace/service_account`` by Pod Identity."""
    [association] = [a for a in resources(data_stack, "aws_eks_pod_identity_association").values()
                     if (a["namespace"], a["service_account"]) == (namespace, service_account)]
    role_name = association["role_arn"].split(".")[1]
    return [s for policy in resources(data_stack, "aws_iam_role_policy").values()
            if policy["role"] in (f"${{aws_iam_role.{role_name}.id}}", f"${{aws_iam_role.{role_name}.name}}")
            for s in json.loads(policy["policy"])["Statement"]]


def grafana_of(stacks, env_name):
    release, values = release_values(stacks[f"{env_name}-platform"], "kube-prometheus-stack")
    return release["namespace"], values["grafana"]


def fluent_bit_log_group(stacks, env_name):
    _, values = release_values(stacks[f"{env_name}-platform"], "fluent-bit")
    return log_group_of(values["cloudWatchLogs"]["logGroupName"], stacks[f"{env_name}-data"])


def test_grafanas_role_may_only_run_logs_insights_queries_on_the_log_groups_fluent_bit_writes(stacks, environments):
    for env_name in environments:
        data = stacks[f"{env_name}-data"]
        namespace, grafana = grafana_of(stacks, env_name)
        statements = role_statements(data, namespace, grafana["serviceAccount"]["name"])
        assert statements, f"{env_name}: no role is bound to Grafana's service account"
        assert {s["Effect"] for s in statements} == {"Allow"}
        actions = {a for s in statements for a in s["Action"]}
        assert actions == LOGS_INSIGHTS_READ, env_name
        groups = set()
        for resource in (r for s in statements for r in s["Resource"]):
            target = _LOG_GROUP_REF.match(resource)
            assert target and target.group(2) == "arn", f"{env_name}: {resource} is not a log group"
            groups.add(target.group(1))
        assert groups == {fluent_bit_log_group(stacks, env_name)}, env_name


def test_grafana_has_a_cloudwatch_data_source_for_that_log_group_with_pod_identity_credentials(stacks, environments):
    for env_name, environment in environments.items():
        data = stacks[f"{env_name}-data"]
        _, grafana = grafana_of(stacks, env_name)
        [source] = [s for s in grafana["additionalDataSources"] if s["type"] == "cloudwatch"]
        # "default": the AWS SDK's credential chain, which reads the Pod Identity agent's credentials; access or
        # secret keys would bypass the role the test above checks.
        assert source["jsonData"]["authType"] == "default"
        assert "secureJsonData" not in source
        assert source["jsonData"]["defaultRegion"] == environment.region
        for group in source["jsonData"]["logGroups"]:
            assert log_group_of(group["arn"], data) == log_group_of(group["name"], data) \
                == fluent_bit_log_group(stacks, env_name)


def test_one_provisioned_dashboard_shows_inference_and_training_logs_next_to_their_gpu_metrics(stacks, environments):
    for env_name in environments:
        data = stacks[f"{env_name}-data"]
        _, grafana = grafana_of(stacks, env_name)
        providers = {p["name"]: p for p in
                     grafana["dashboardProviders"]["dashboardproviders.yaml"]["providers"]}
        sources = {s["uid"]: s["type"] for s in grafana["additionalDataSources"]}
        shown = set()
        for provider, dashboards in grafana["dashboards"].items():
            # The chart mounts dashboards.<provider> at the provider's path; without it Grafana never reads them.
            assert providers[provider]["options"]["path"] == f"/var/lib/grafana/dashboards/{provider}"
            for dashboard in dashboards.values():
                panels = json.loads(dashboard["json"])["panels"]
                logs = {}
                for panel in panels:
                    for target in panel["targets"]:
                        if sources.get(target["datasource"]["uid"]) != "cloudwatch":
                            continue
                        assert {log_group_of(g["arn"], data) for g in target["logGroups"]} \
                            == {fluent_bit_log_group(stacks, env_name)}
                        namespace = re.search(r"kubernetes\.namespace_name = '([\w-]+)'", target["expression"])
                        logs[namespace.group(1)] = panel["gridPos"]["y"]
                gpus = {m.group(1): p["gridPos"]["y"] for p in panels for t in p["targets"]
                        if "DCGM_FI_" in t.get("expr", "")
                        and (m := re.search(r'exported_namespace="([\w-]+)"', t["expr"]))}
                # Side by side: a namespace's logs and its GPU metrics share a row.
                shown |= {namespace for namespace, row in logs.items() if gpus.get(namespace) == row}
        assert {"inference", "training"} <= shown, env_name
