"""One-change defects of the real synth that the policy gate must catch, each with what the gate must name.

Each mutant is a copy of the session's synthesized folder with ONE realistic change (a careless edit of a
construct, a data file or an environment's output), made on prod's stacks, which carry no waiver. A mutant
returns what the gate must then report: ``("check", <check id>, <stack>, <resource address>)`` for a failed check,
or ``("problem", <kind>, <stack>, None)`` for a stack-integrity problem. Resources are found by what they are
(tags, attributes, the namespace they guard), never by their generated names, so the catalogue holds for any valid
environment that has the feature.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ENV = "prod"
Expected = tuple[str, str, str, str | None]
CLUSTER_ADMIN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
SUB = "token.actions.githubusercontent.com:sub"
MAIN = "refs/heads/main"


class Folder:
    """A synthesized folder's stack documents, edited in memory and written back once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest = json.loads((root / "manifest.json").read_text())
        self.documents = {name: json.loads((root / entry["synthesizedStackPath"]).read_text())
                          for name, entry in self.manifest["stacks"].items()}
        self._originals = json.dumps(self.documents)

    def stack(self, layer: str) -> str:
        return f"{ENV}-{layer}"

    def resources(self, layer: str, resource_type: str) -> dict[str, dict[str, Any]]:
        return self.documents[self.stack(layer)]["resource"].setdefault(resource_type, {})

    def find(self, layer: str, resource_type: str, predicate: Callable[[dict], bool] = lambda body: True
             ) -> tuple[str, dict[str, Any]]:
        """(``type.name``, body) of the first resource (by name) of the type that matches."""
        for name, body in sorted(self.resources(layer, resource_type).items()):
            if predicate(body):
                return f"{resource_type}.{name}", body
        raise AssertionError(f"no {resource_type} in {self.stack(layer)} matches: the mutant does not apply")

    def write(self) -> None:
        """Write the stacks that changed (the others stay byte-identical to the synth) and the manifest."""
        originals = json.loads(self._originals)
        for name, document in self.documents.items():
            path = self.root / self.manifest["stacks"][name]["synthesizedStackPath"]
            if document != originals.get(name):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(document, indent=2))
        (self.root / "manifest.json").write_text(json.dumps(self.manifest, indent=2))


def _policy(body: dict, key: str = "policy") -> dict:
    return json.loads(body[key])


def _set_policy(body: dict, document: dict, key: str = "policy") -> None:
    body[key] = json.dumps(document, indent=2)


def _tagged_role(kind: str) -> Callable[[dict], bool]:
    return lambda body: (body.get("tags") or {}).get("github-actions-role") == kind


def _claim(repository: str, context: str, ref: str, workflow: str) -> str:
    """A ``sub`` of the repository's subject template (platform_config/github_oidc.py)."""
    return f"repo:{repository}:{context}:ref:{ref}:job_workflow_ref:{repository}/.github/workflows/{workflow}@{ref}"


def _set_subjects(body: dict, context: str, ref: str, workflow: str, operator: str = "StringEquals") -> None:
    trust = _policy(body, "assume_role_policy")
    statement = trust["Statement"][0]
    conditions = statement["Condition"]
    [value] = [v for c in conditions.values() for v in _as_list(c.get(SUB, []))]
    repository = value.split(":")[1]
    for condition in conditions.values():
        condition.pop(SUB, None)
    conditions.setdefault(operator, {})[SUB] = [_claim(repository, context, ref, workflow)]
    _set_policy(body, trust, "assume_role_policy")


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# --- IAM ------------------------------------------------------------------------------------------------------

def deploy_role_trusts_pull_requests(f: Folder) -> list[Expected]:
    address, role = f.find("delivery", "aws_iam_role", _tagged_role("deploy"))
    _set_subjects(role, "pull_request", "refs/pull/1/merge", "deploy.yml")
    attachment, _ = f.find("delivery", "aws_iam_role_policy_attachment",
                           lambda body: body["policy_arn"].endswith("/AdministratorAccess"))
    # the AdministratorAccess skip rests on the deploy trust: it lapses, so CKV_AWS_274 fails too
    return [("check", "CKV_PLAT_24", f.stack("delivery"), address),
            ("check", "CKV_AWS_274", f.stack("delivery"), attachment)]


def deploy_role_trusts_another_environment(f: Folder) -> list[Expected]:
    address, role = f.find("delivery", "aws_iam_role", _tagged_role("deploy"))
    other = "staging" if ENV != "staging" else "dev"
    _set_subjects(role, f"environment:{other}", MAIN, "deploy.yml")
    return [("check", "CKV_PLAT_24", f.stack("delivery"), address)]


def deploy_role_trusts_its_environment_from_any_branch(f: Folder) -> list[Expected]:
    address, role = f.find("delivery", "aws_iam_role", _tagged_role("deploy"))
    environment = role["tags"]["github-environment"]
    _set_subjects(role, f"environment:{environment}", "refs/heads/*", "deploy.yml", operator="StringLike")
    return [("check", "CKV_PLAT_24", f.stack("delivery"), address)]


def image_push_role_trusts_every_branch(f: Folder) -> list[Expected]:
    address, role = f.find("delivery", "aws_iam_role", _tagged_role("image-push"))
    environment = role["tags"]["github-environment"]
    _set_subjects(role, f"environment:{environment}", "refs/heads/*", "images.yml", operator="StringLike")
    return [("check", "CKV_PLAT_24", f.stack("delivery"), address)]


def image_push_role_trusts_main_outside_its_approval_environment(f: Folder) -> list[Expected]:
    address, role = f.find("delivery", "aws_iam_role", _tagged_role("image-push"))
    _set_subjects(role, f"ref:{MAIN}", MAIN, "images.yml")
    return [("check", "CKV_PLAT_24", f.stack("delivery"), address)]


def plan_role_trusts_any_subject(f: Folder) -> list[Expected]:
    address, role = f.find("delivery", "aws_iam_role", _tagged_role("plan"))
    trust = _policy(role, "assume_role_policy")
    for condition in trust["Statement"][0]["Condition"].values():
        condition.pop(SUB, None)
    trust["Statement"][0]["Condition"]["StringLike"] = {SUB: "*"}
    _set_policy(role, trust, "assume_role_policy")
    # CKV_AWS_393 sees the provider only because the gate resolves the Federated reference
    return [("check", "CKV_PLAT_24", f.stack("delivery"), address),
            ("check", "CKV_AWS_393", f.stack("delivery"), address)]


def plan_role_without_audience(f: Folder) -> list[Expected]:
    address, role = f.find("delivery", "aws_iam_role", _tagged_role("plan"))
    trust = _policy(role, "assume_role_policy")
    del trust["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:aud"]
    _set_policy(role, trust, "assume_role_policy")
    return [("check", "CKV_PLAT_24", f.stack("delivery"), address)]


def kms_key_policy_allows_everyone(f: Folder) -> list[Expected]:
    address, key = f.find("data", "aws_kms_key")
    policy = _policy(key)
    policy["Statement"].append({"Sid": "Everyone", "Effect": "Allow", "Principal": {"AWS": "*"},
                                "Action": "kms:Decrypt", "Resource": "*"})
    _set_policy(key, policy)
    return [("check", "CKV_AWS_33", f.stack("data"), address)]


def workload_role_can_pass_any_role_to_ec2(f: Folder) -> list[Expected]:
    address, body = f.find("data", "aws_iam_role_policy")
    policy = _policy(body)
    policy["Statement"].append({"Sid": "LaunchWorkers", "Effect": "Allow",
                                "Action": ["iam:PassRole", "ec2:RunInstances"], "Resource": "*"})
    _set_policy(body, policy)
    return [("check", "CKV_PLAT_27", f.stack("data"), address)]


def workload_role_reads_every_bucket(f: Folder) -> list[Expected]:
    address, body = f.find("data", "aws_iam_role_policy", lambda b: '"s3:' in b["policy"])
    policy = _policy(body)
    statement = next(s for s in policy["Statement"] if "s3:" in json.dumps(s.get("Action")))
    statement["Resource"] = "*"
    _set_policy(body, policy)
    return [("check", "CKV_PLAT_22", f.stack("data"), address)]


def bucket_policy_allows_everyone_to_read(f: Folder) -> list[Expected]:
    address, body = f.find("data", "aws_s3_bucket_policy")
    policy = _policy(body)
    bucket_arn = policy["Statement"][0]["Resource"][0]
    policy["Statement"].append({"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                                "Action": "s3:GetObject", "Resource": f"{bucket_arn}/*"})
    _set_policy(body, policy)
    return [("check", "CKV_AWS_70", f.stack("data"), address)]


# --- network --------------------------------------------------------------------------------------------------

def webhook_port_open_to_the_internet(f: Folder) -> list[Expected]:
    address, rule = f.find("cluster", "aws_vpc_security_group_ingress_rule",
                           lambda body: body.get("from_port") == 443 and "node-security-group" in
                           body["security_group_id"])
    del rule["referenced_security_group_id"]
    rule["cidr_ipv4"] = "0.0.0.0/0"
    return [("check", "CKV_PLAT_25", f.stack("cluster"), address)]


def node_egress_for_all_protocols_to_the_internet(f: Folder) -> list[Expected]:
    address, rule = f.find("cluster", "aws_vpc_security_group_egress_rule",
                           lambda body: str(body.get("ip_protocol")) == "-1")
    rule["cidr_ipv4"] = "0.0.0.0/0"
    return [("check", "CKV_PLAT_26", f.stack("cluster"), address)]


def node_to_node_rule_opened_to_everyone(f: Folder) -> list[Expected]:
    address, rule = f.find("cluster", "aws_vpc_security_group_ingress_rule",
                           lambda body: str(body.get("ip_protocol")) == "-1")
    del rule["referenced_security_group_id"]
    rule["cidr_ipv4"] = "0.0.0.0/0"
    return [("check", "CKV_PLAT_25", f.stack("cluster"), address),
            ("check", "CKV_PLAT_26", f.stack("cluster"), address)]


def vpc_endpoints_open_to_the_internet(f: Folder) -> list[Expected]:
    address, rule = f.find("network", "aws_vpc_security_group_ingress_rule")
    rule["cidr_ipv4"] = "0.0.0.0/0"
    return [("check", "CKV_PLAT_25", f.stack("network"), address)]


def cluster_endpoint_public_to_everyone(f: Folder) -> list[Expected]:
    address, cluster = f.find("cluster", "aws_eks_cluster")
    cluster["vpc_config"] |= {"endpoint_public_access": True, "public_access_cidrs": ["0.0.0.0/0"]}
    return [("check", "CKV_PLAT_13", f.stack("cluster"), address)]


def private_subnet_assigns_public_ips(f: Folder) -> list[Expected]:
    address, subnet = f.find("network", "aws_subnet",
                             lambda body: "kubernetes.io/role/internal-elb" in (body.get("tags") or {}))
    subnet["map_public_ip_on_launch"] = True
    return [("check", "CKV_AWS_130", f.stack("network"), address)]


# --- data -----------------------------------------------------------------------------------------------------

def _bucket_of(body: dict) -> str:
    return body["bucket"].removeprefix("${").rsplit(".", 1)[0]


def bucket_encrypted_with_s3_managed_keys(f: Folder) -> list[Expected]:
    _, body = f.find("data", "aws_s3_bucket_server_side_encryption_configuration")
    body["rule"][0]["apply_server_side_encryption_by_default"] = {"sse_algorithm": "AES256"}
    return [("check", "CKV2_PLAT_1", f.stack("data"), _bucket_of(body))]


def bucket_versioning_suspended(f: Folder) -> list[Expected]:
    _, body = f.find("data", "aws_s3_bucket_versioning")
    body["versioning_configuration"]["status"] = "Suspended"
    return [("check", "CKV2_PLAT_2", f.stack("data"), _bucket_of(body))]


def bucket_policy_without_tls_deny(f: Folder) -> list[Expected]:
    address, body = f.find("data", "aws_s3_bucket_policy")
    policy = _policy(body)
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != "DenyPlainHttp"] or [
        {"Sid": "Nothing", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket",
         "Resource": policy["Statement"][0]["Resource"][0]}]
    _set_policy(body, policy)
    return [("check", "CKV_PLAT_16", f.stack("data"), address)]


def database_unencrypted(f: Folder) -> list[Expected]:
    address, db = f.find("data", "aws_db_instance")
    db["storage_encrypted"] = False
    db.pop("kms_key_id", None)
    return [("check", "CKV_AWS_16", f.stack("data"), address)]


def database_publicly_accessible(f: Folder) -> list[Expected]:
    address, db = f.find("data", "aws_db_instance")
    db["publicly_accessible"] = True
    return [("check", "CKV_AWS_17", f.stack("data"), address)]


def file_system_unencrypted(f: Folder) -> list[Expected]:
    address, efs = f.find("data", "aws_efs_file_system")
    efs["encrypted"] = False
    efs.pop("kms_key_id", None)
    return [("check", "CKV_AWS_42", f.stack("data"), address)]


def data_key_rotation_off(f: Folder) -> list[Expected]:
    address, key = f.find("data", "aws_kms_key")
    key["enable_key_rotation"] = False
    return [("check", "CKV_AWS_7", f.stack("data"), address)]


def bucket_loses_prevent_destroy(f: Folder) -> list[Expected]:
    address, bucket = f.find("data", "aws_s3_bucket")
    bucket["lifecycle"]["prevent_destroy"] = False
    return [("check", "CKV_PLAT_23", f.stack("data"), address)]


# --- cluster access -------------------------------------------------------------------------------------------

def viewer_upgraded_to_cluster_admin(f: Folder) -> list[Expected]:
    address, association = f.find("cluster", "aws_eks_access_policy_association",
                                   lambda body: body["policy_arn"].endswith("ViewPolicy"))
    association["policy_arn"] = CLUSTER_ADMIN
    return [("check", "CKV_PLAT_31", f.stack("cluster"), address)]


def plan_role_listed_as_cluster_admin(f: Folder) -> list[Expected]:
    _, plan = f.find("cluster", "aws_eks_access_entry", lambda body: body["principal_arn"].endswith("-github-plan"))
    admin_name, admin = f.find("cluster", "aws_eks_access_entry",
                               lambda body: not body["principal_arn"].endswith("-github-plan"))
    admin["principal_arn"] = plan["principal_arn"]
    reference = f"${{{admin_name}.principal_arn}}"
    association, _ = f.find("cluster", "aws_eks_access_policy_association",
                            lambda body: body["principal_arn"] == reference)
    return [("check", "CKV_PLAT_31", f.stack("cluster"), association)]


def cluster_authenticates_through_the_config_map(f: Folder) -> list[Expected]:
    address, cluster = f.find("cluster", "aws_eks_cluster")
    cluster["access_config"]["authentication_mode"] = "API_AND_CONFIG_MAP"
    return [("check", "CKV_PLAT_12", f.stack("cluster"), address)]


def cluster_secrets_not_encrypted(f: Folder) -> list[Expected]:
    address, cluster = f.find("cluster", "aws_eks_cluster")
    del cluster["encryption_config"]
    return [("check", "CKV_PLAT_11", f.stack("cluster"), address)]


# --- in-cluster security --------------------------------------------------------------------------------------

def controller_role_bound_to_a_workload_namespace(f: Folder) -> list[Expected]:
    address, association = f.find("platform", "aws_eks_pod_identity_association",
                                   lambda body: body["namespace"] == "kube-system")
    association["namespace"] = "inference"
    return [("check", "CKV_PLAT_32", f.stack("platform"), address)]


def workload_role_bound_to_the_default_service_account(f: Folder) -> list[Expected]:
    address, association = f.find("data", "aws_eks_pod_identity_association")
    association["service_account"] = "default"
    return [("check", "CKV_PLAT_32", f.stack("data"), address)]


def _deny_of(f: Folder, namespace: str) -> tuple[str, dict]:
    names = {f"${{kubernetes_namespace_v1.{n}.metadata[0].name}}": b["metadata"]["name"]
             for n, b in f.resources("platform", "kubernetes_namespace_v1").items()}
    return f.find("platform", "kubernetes_network_policy_v1", lambda body: body["metadata"]["name"] == "default-deny"
                  and names.get(body["metadata"]["namespace"], body["metadata"]["namespace"]) == namespace)


def kube_system_default_deny_removed(f: Folder) -> list[Expected]:
    address, _ = _deny_of(f, "kube-system")
    del f.resources("platform", "kubernetes_network_policy_v1")[address.split(".", 1)[1]]
    # kube-system has no namespace resource: the gate names the cluster it belongs to
    cluster, _ = f.find("cluster", "aws_eks_cluster")
    return [("check", "CKV_PLAT_33", f.stack("cluster"), cluster)]


def monitoring_default_deny_allows_all_egress(f: Folder) -> list[Expected]:
    _, deny = _deny_of(f, "monitoring")
    deny["spec"]["egress"] = [{"to": [{"ip_block": {"cidr": "0.0.0.0/0"}}]}]
    namespace, _ = f.find("platform", "kubernetes_namespace_v1", lambda body: body["metadata"]["name"] == "monitoring")
    return [("check", "CKV_PLAT_33", f.stack("platform"), namespace)]


def network_policies_not_enforced(f: Folder) -> list[Expected]:
    address, addon = f.find("cluster", "aws_eks_addon", lambda body: body["addon_name"] == "vpc-cni")
    addon["configuration_values"] = json.dumps({"enableNetworkPolicy": "false"})
    return [("check", "CKV_PLAT_34", f.stack("cluster"), address)]


def vpc_cni_add_on_dropped(f: Folder) -> list[Expected]:
    address, _ = f.find("cluster", "aws_eks_addon", lambda body: body["addon_name"] == "vpc-cni")
    del f.resources("cluster", "aws_eks_addon")[address.split(".", 1)[1]]
    cluster, _ = f.find("cluster", "aws_eks_cluster")
    return [("check", "CKV_PLAT_34", f.stack("cluster"), cluster)]


def training_namespace_made_privileged(f: Folder) -> list[Expected]:
    address, namespace = f.find("platform", "kubernetes_namespace_v1",
                                lambda body: body["metadata"]["name"] == "training")
    namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "privileged"
    return [("check", "CKV_PLAT_28", f.stack("platform"), address)]


def grafana_admin_password_in_values(f: Folder) -> list[Expected]:
    address, release = f.find("platform", "helm_release", lambda body: body["chart"] == "kube-prometheus-stack")
    release["values"][0] += "\nextraSettings:\n  adminPassword: Tr0ub4dor-and-3\n"
    return [("check", "CKV_PLAT_29", f.stack("platform"), address)]


def aws_key_in_release_values(f: Folder) -> list[Expected]:
    address, release = f.find("workloads", "helm_release", lambda body: body["chart"] == "mlflow")
    release["values"][0] += "\nextraEnvVars:\n  AWS_ACCESS_KEY_ID: AKIAQ7X3L2M4N5O6P7Z9\n"
    return [("check", "CKV_SECRET_2", f.stack("workloads"), address)]


def kubernetes_secret_with_literal_data(f: Folder) -> list[Expected]:
    f.resources("platform", "kubernetes_secret_v1")["registry-credentials"] = {
        "metadata": {"name": "registry-credentials", "namespace": "inference"},
        "data": {"password": "s3cr3t-registry-pass"}}
    return [("check", "CKV_PLAT_30", f.stack("platform"), "kubernetes_secret_v1.registry-credentials")]


def _edit_delivered_manifests(f: Folder, layer: str, kind: str, edit: Callable[[dict], None]) -> str:
    """Apply ``edit`` to every manifest of ``kind`` that an Argo CD Application of the layer's manifests release
    delivers (its chart source's templates); the release's address."""
    address, release = f.find(layer, "helm_release", lambda body: body["chart"] == "raw"
                              and f"kind: {kind}" in body["values"][0])
    values = yaml.safe_load(release["values"][0])
    edited = 0
    for manifest in values["resources"]:
        for source in manifest.get("spec", {}).get("sources", []) if manifest["kind"] == "Application" else []:
            templates = source.get("helm", {}).get("valuesObject", {}).get("templates", [])
            for index, template in enumerate(templates):
                if f"kind: {kind}\n" in template:
                    manifest_of_template = yaml.safe_load(template)
                    edit(manifest_of_template)
                    templates[index] = yaml.safe_dump(manifest_of_template, sort_keys=False)
                    edited += 1
    assert edited, f"no {kind} in the {layer} layer's Applications: the mutant does not apply"
    release["values"][0] = yaml.safe_dump(values, sort_keys=False, default_flow_style=False, width=1000)
    return address


def mesh_admits_the_whole_vpc_in_clear(f: Folder) -> list[Expected]:
    """The inference servers' NetworkAuthentication widened from the load balancers' subnets to the VPC."""
    [vpc] = [body["cidr_block"] for body in f.resources("network", "aws_vpc").values()]
    address = _edit_delivered_manifests(f, "workloads", "NetworkAuthentication",
                                        lambda m: m["spec"].update(networks=[{"cidr": vpc}]))
    return [("check", "CKV_PLAT_35", f.stack("workloads"), address)]


def inference_ingress_without_client_networks(f: Folder) -> list[Expected]:
    """The inference ALB's inbound-cidrs dropped: the controller would open it to 0.0.0.0/0."""
    def drop_sources(ingress: dict) -> None:
        del ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/inbound-cidrs"]

    address = _edit_delivered_manifests(f, "workloads", "Ingress", drop_sources)
    return [("check", "CKV_PLAT_36", f.stack("workloads"), address)]


def chart_version_range(f: Folder) -> list[Expected]:
    address, release = f.find("platform", "helm_release", lambda body: body["chart"] == "metrics-server")
    release["version"] = "^" + release["version"].lstrip("v")
    return [("check", "CKV_PLAT_14", f.stack("platform"), address)]


# --- stack integrity ------------------------------------------------------------------------------------------

def stack_dropped_from_folder_and_manifest(f: Folder) -> list[Expected]:
    stack = f.stack("workloads")
    entry = f.manifest["stacks"].pop(stack)
    (f.root / entry["synthesizedStackPath"]).unlink()
    del f.documents[stack]
    return [("problem", "missing-stack", stack, None)]


def github_stack_dropped_from_folder_and_manifest(f: Folder) -> list[Expected]:
    """The repository's settings (environments, their reviewers, the OIDC template) are a stack the gate expects."""
    entry = f.manifest["stacks"].pop("github")
    (f.root / entry["synthesizedStackPath"]).unlink()
    del f.documents["github"]
    return [("problem", "missing-stack", "github", None)]


def extra_stack_in_folder_and_manifest(f: Folder) -> list[Expected]:
    stack = f"{ENV}-scratch"
    f.manifest["stacks"][stack] = {"name": stack, "synthesizedStackPath": f"stacks/{stack}/cdk.tf.json",
                                   "workingDirectory": f"stacks/{stack}"}
    (f.root / "stacks" / stack).mkdir()
    f.documents[stack] = json.loads(json.dumps(f.documents[f.stack("workloads")]))
    return [("problem", "extra-stack", stack, None)]


def stack_file_truncated(f: Folder) -> list[Expected]:
    stack = f.stack("data")
    path = f.root / f.manifest["stacks"][stack]["synthesizedStackPath"]
    del f.documents[stack]
    path.write_text(path.read_text()[:1000])
    return [("problem", "missing-stack", stack, None)]


@dataclass(frozen=True)
class Mutant:
    area: str
    name: str
    apply: Callable[[Folder], list[Expected]]


MUTANTS = [Mutant(area, function.__name__, function) for area, functions in (
    ("IAM", (deploy_role_trusts_pull_requests, deploy_role_trusts_another_environment,
             deploy_role_trusts_its_environment_from_any_branch, image_push_role_trusts_every_branch,
             image_push_role_trusts_main_outside_its_approval_environment, plan_role_trusts_any_subject,
             plan_role_without_audience,
             kms_key_policy_allows_everyone, workload_role_can_pass_any_role_to_ec2, workload_role_reads_every_bucket,
             bucket_policy_allows_everyone_to_read)),
    ("network", (webhook_port_open_to_the_internet, node_egress_for_all_protocols_to_the_internet,
                 node_to_node_rule_opened_to_everyone, vpc_endpoints_open_to_the_internet,
                 cluster_endpoint_public_to_everyone, private_subnet_assigns_public_ips)),
    ("data", (bucket_encrypted_with_s3_managed_keys, bucket_versioning_suspended, bucket_policy_without_tls_deny,
              database_unencrypted, database_publicly_accessible, file_system_unencrypted, data_key_rotation_off,
              bucket_loses_prevent_destroy)),
    ("cluster access", (viewer_upgraded_to_cluster_admin, plan_role_listed_as_cluster_admin,
                        cluster_authenticates_through_the_config_map, cluster_secrets_not_encrypted)),
    ("in-cluster security", (controller_role_bound_to_a_workload_namespace,
                             workload_role_bound_to_the_default_service_account, kube_system_default_deny_removed,
                             monitoring_default_deny_allows_all_egress, network_policies_not_enforced,
                             vpc_cni_add_on_dropped, training_namespace_made_privileged,
                             grafana_admin_password_in_values, aws_key_in_release_values,
                             kubernetes_secret_with_literal_data, chart_version_range,
                             mesh_admits_the_whole_vpc_in_clear, inference_ingress_without_client_networks)),
    ("stack integrity", (stack_dropped_from_folder_and_manifest, github_stack_dropped_from_folder_and_manifest,
                         extra_stack_in_folder_and_manifest,
                         stack_file_truncated)),
) for function in functions]


# -----------------------------------------------------------------------------------------------------------------
# several regressions in one copy, one per stack, for the tests of tests/test_gate.py

def _first(document: dict, resource_type: str, predicate=lambda config: True) -> tuple[str, dict] | None:
    for name, config in sorted(document.get("resource", {}).get(resource_type, {}).items()):
        if predicate(config):
            return f"{resource_type}.{name}", config
    return None


def _tainted(config: dict) -> bool:
    return bool(config.get("taint"))


class SeveralRegressions:
    """A copy of the real synth with one regression per stack, and what each must make the gate report: the
    gate's results on the stacks nobody changed stay as on the real synth."""

    def __init__(self, source: Path, target: Path) -> None:
        shutil.copytree(source, target)
        self.folder = target
        self.documents = Folder(target).documents
        self.expected: dict[str, list[tuple[str, str, str]]] = {}
        self.required_version_only: str | None = None
        cluster_stacks = sorted(n for n, d in self.documents.items() if _first(d, "aws_eks_node_group", _tainted))
        assert len(cluster_stacks) >= 2, "the mutation tests need two stacks with tainted GPU node groups"

        # the GPU taint removed from a node group
        stack = cluster_stacks[0]
        address, config = _first(self.documents[stack], "aws_eks_node_group", _tainted)
        del config["taint"]
        self.expected["taint"] = [("CKV_PLAT_1", stack, address)]

        # IMDSv1 allowed on a launch template
        stack = cluster_stacks[1]
        address, config = _first(self.documents[stack], "aws_launch_template")
        config["metadata_options"]["http_tokens"] = "optional"
        self.expected["http_tokens"] = [("CKV_PLAT_6", stack, address), ("CKV_AWS_79", stack, address)]

        # a bucket's public access block removed
        found = next(((n, _first(d, "aws_s3_bucket_public_access_block")) for n, d in sorted(self.documents.items())
                      if _first(d, "aws_s3_bucket_public_access_block")), None)
        if found:
            stack, (address, config) = found
            del self.documents[stack]["resource"]["aws_s3_bucket_public_access_block"][address.split(".", 1)[1]]
            bucket = re.fullmatch(r"\$\{(aws_s3_bucket\.[^.]+)\.(id|bucket)\}", config["bucket"]).group(1)
            self.expected["public_access_block"] = [("CKV2_PLAT_3", stack, bucket), ("CKV2_AWS_6", stack, bucket)]

        # terraform.required_version added to a stack that also loses a GPU taint: it must still be scanned
        stack = cluster_stacks[-1] if len(cluster_stacks) > 2 else cluster_stacks[0]
        document = self.documents[stack]
        document.setdefault("terraform", {})["required_version"] = ">= 1.10"
        if stack != cluster_stacks[0]:
            address, config = _first(document, "aws_eks_node_group", _tainted)
            del config["taint"]
            self.expected["required_version"] = [("CKV_PLAT_1", stack, address)]
        else:
            self.expected["required_version"] = self.expected["taint"]
        # ... and to one stack that has no other change: its results must not change
        self.required_version_only = next(n for n in sorted(self.documents) if n not in cluster_stacks
                                          and (not found or n != found[0]))
        self.documents[self.required_version_only].setdefault("terraform", {})["required_version"] = ">= 1.10"

        manifest = json.loads((target / "manifest.json").read_text())
        for name, document in self.documents.items():
            path = target / manifest["stacks"][name]["synthesizedStackPath"]
            path.write_text(json.dumps(document, indent=2))


# ---------------------------------------------------------------------------------------------------------------
# regressions of prod-platform and prod-data in one copy, for tests/test_policy_checks.py


def namespace_and_data_regressions(f: Folder) -> dict[str, tuple[str, str, str]]:
    """prod-platform and prod-data with regressions the namespace and data checks must catch: what each must make
    the gate report, as (check id, stack, resource)."""
    platform, data = f.documents["prod-platform"]["resource"], f.documents["prod-data"]["resource"]
    namespace_of = {body["metadata"]["name"]: name for name, body in platform["kubernetes_namespace_v1"].items()}
    deny_of = {body["metadata"]["namespace"]: name for name, body in platform["kubernetes_network_policy_v1"].items()
               if body["metadata"]["name"] == "default-deny"}

    def reference(namespace: str) -> str:
        return f"${{kubernetes_namespace_v1.{namespace_of[namespace]}.metadata[0].name}}"

    expected = {}
    # inference loses its default-deny policy
    del platform["kubernetes_network_policy_v1"][deny_of[reference("inference")]]
    expected["deny removed"] = ("CKV2_PLAT_5", "prod-platform", f"kubernetes_namespace_v1.{namespace_of['inference']}")
    # agentic's default-deny names its namespace as a plain string: no longer provably in that namespace
    platform["kubernetes_network_policy_v1"][deny_of[reference("agentic")]]["metadata"]["namespace"] = "agentic"
    expected["deny by name"] = ("CKV2_PLAT_5", "prod-platform", f"kubernetes_namespace_v1.{namespace_of['agentic']}")
    # mlops leaves the mesh
    platform["kubernetes_namespace_v1"][namespace_of["mlops"]]["metadata"]["annotations"]["linkerd.io/inject"] = \
        "disabled"
    expected["unmeshed"] = ("CKV_PLAT_17", "prod-platform", f"kubernetes_namespace_v1.{namespace_of['mlops']}")
    # a secret gets its value from Terraform
    secret = sorted(data["aws_secretsmanager_secret"])[0]
    data["aws_secretsmanager_secret_version"] = {"value": {
        "secret_id": f"${{aws_secretsmanager_secret.{secret}.id}}", "secret_string": "not-a-real-value"}}
    expected["secret value"] = ("CKV2_PLAT_7", "prod-data", f"aws_secretsmanager_secret.{secret}")
    # a bucket loses prevent_destroy, a role policy gains a * resource, the database gets a password
    bucket = sorted(data["aws_s3_bucket"])[0]
    data["aws_s3_bucket"][bucket]["lifecycle"]["prevent_destroy"] = False
    expected["unprotected"] = ("CKV_PLAT_23", "prod-data", f"aws_s3_bucket.{bucket}")
    policy_name = sorted(data["aws_iam_role_policy"])[0]
    policy = json.loads(data["aws_iam_role_policy"][policy_name]["policy"])
    scoped = ("s3:", "secretsmanager:", "kms:", "logs:")
    statement = next(s for s in policy["Statement"] if s["Effect"] == "Allow" and any(
        a.startswith(scoped) for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])))
    statement["Resource"] = "*"
    data["aws_iam_role_policy"][policy_name]["policy"] = json.dumps(policy)
    expected["star resource"] = ("CKV_PLAT_22", "prod-data", f"aws_iam_role_policy.{policy_name}")
    database = next(iter(data["aws_db_instance"]))
    data["aws_db_instance"][database] |= {"manage_master_user_password": False, "password": "not-a-real-password"}
    expected["password"] = ("CKV_PLAT_21", "prod-data", f"aws_db_instance.{database}")

    return expected
