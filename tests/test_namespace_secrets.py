"""A namespace reads only its own secrets, evaluated on the synthesized IAM and External Secrets objects.

What a namespace N can read in Secrets Manager is what the roles its service accounts can become may read:
- roles whose OIDC trust accepts a service-account token of N (``sub`` = ``system:serviceaccount:N:...``; the
  namespace's SecretStore exchanges the ``secrets-reader`` token, and a namespaced SecretStore names only accounts
  of its own namespace), and
- roles bound to N by an EKS Pod Identity association.
N may read only what it consumes: the catalogue secrets synced to N, the secrets of N's workload identities, the
database secret of the service that runs in N, and the W&B license in the server's namespace. And no
ClusterSecretStore exists: it would let the controller read for any namespace.
"""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml

from platform_config import wandb_server
from platform_config.data_layer import platform_secrets, secret_name, workload_identities
from platform_config.external_secrets import READER_SERVICE_ACCOUNT, ROLE_ARN_ANNOTATION, STORE_NAME
from tests_support import resources

SERVICE_ACCOUNT_SUBJECT = re.compile(r"^system:serviceaccount:(?P<namespace>[^:]+):(?P<account>[^:]+)$")
#: Database secrets RDS keeps, by the suffix of the database identifier: the namespace whose service reads it.
DATABASE_CONSUMERS = {"mlflow": workload_identities()["mlflow"].namespace, "wandb": wandb_server.NAMESPACE}


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def secret_of(reference: str, stack: dict) -> str:
    """A readable name for a secret reference of the data stack: the Secrets Manager name, or ``rds:<suffix>``."""
    match = re.fullmatch(r"\$\{aws_secretsmanager_secret\.([\w-]+)\.arn\}", reference)
    if match:
        return resources(stack, "aws_secretsmanager_secret")[match[1]]["name"]
    match = re.fullmatch(r"\$\{aws_db_instance\.([\w-]+)\.master_user_secret\[0\]\.secret_arn\}", reference)
    if match:
        return "rds:" + resources(stack, "aws_db_instance")[match[1]]["identifier"].rsplit("-", 1)[1]
    return reference


def role_reads(stack: dict) -> dict[str, set[str]]:
    """Role address -> the secrets its inline policies let it read (GetSecretValue)."""
    reads: dict[str, set[str]] = {}
    for policy in resources(stack, "aws_iam_role_policy").values():
        address = re.fullmatch(r"\$\{aws_iam_role\.([\w-]+)\.(?:id|name)\}", policy["role"])[1]
        for statement in json.loads(policy["policy"])["Statement"]:
            actions = as_list(statement.get("Action", []))
            if statement["Effect"] == "Allow" and any(a in ("secretsmanager:GetSecretValue", "secretsmanager:*", "*")
                                                      for a in actions):
                reads.setdefault(address, set()).update(secret_of(r, stack) for r in as_list(statement["Resource"]))
    return reads


def namespaces_of_role(address: str, stack: dict) -> set[str]:
    """The namespaces whose pods can become the role: by its OIDC trust, or by Pod Identity associations."""
    found = set()
    role = resources(stack, "aws_iam_role")[address]
    for statement in json.loads(role["assume_role_policy"])["Statement"]:
        for operator, condition in statement.get("Condition", {}).items():
            for key, values in condition.items():
                if not key.endswith(":sub"):
                    continue
                for subject in as_list(values):
                    match = SERVICE_ACCOUNT_SUBJECT.match(subject)
                    if operator != "StringEquals" or not match or any(c in subject for c in "*?"):
                        found.add(f"any namespace (sub {operator} {subject})")
                    else:
                        found.add(match["namespace"])
    for association in resources(stack, "aws_eks_pod_identity_association").values():
        if association["role_arn"] == f"${{aws_iam_role.{address}.arn}}":
            found.add(association["namespace"])
    return found


def consumed(namespace: str, env_name: str) -> set[str]:
    catalogue = {secret_name(env_name, key) for key, entry in platform_secrets().items()
                 if namespace in entry.synced_to}
    identities = {secret_name(env_name, key) for identity in workload_identities().values()
                  if identity.namespace == namespace for key in identity.secrets}
    databases = {f"rds:{suffix}" for suffix, consumer in DATABASE_CONSUMERS.items() if consumer == namespace}
    server = {secret_name(env_name, wandb_server.LICENSE_SECRET_KEY)} if namespace == wandb_server.NAMESPACE else set()
    return catalogue | identities | databases | server


def cross_namespace_reads(stack: dict, env_name: str) -> dict[str, set[str]]:
    """Namespace (or 'any namespace ...') -> secrets it can read but does not consume; roles that read secrets
    but that no namespace can become are reported under their address."""
    found: dict[str, set[str]] = {}
    for address, secrets in role_reads(stack).items():
        namespaces = namespaces_of_role(address, stack) or {f"role {address} (assumed outside the cluster)"}
        for namespace in namespaces:
            extra = secrets - consumed(namespace, env_name)
            if extra:
                found.setdefault(namespace, set()).update(extra)
    return found


def release_manifests(stacks: dict, env_name: str) -> list[dict]:
    manifests = []
    for layer in ("platform", "workloads"):
        for release in resources(stacks.get(f"{env_name}-{layer}", {}), "helm_release").values():
            for text in release.get("values", []):
                document = yaml.safe_load(text) or {}
                for value in document.values() if isinstance(document, dict) else []:
                    if isinstance(value, list):
                        manifests += [m for m in value if isinstance(m, dict) and "kind" in m]
    return manifests


ENVIRONMENTS = ["dev", "staging", "prod"]


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_no_namespace_can_read_a_secret_it_does_not_consume(stacks, env_name):
    stack = stacks[f"{env_name}-data"]
    assert role_reads(stack), "no role reads a secret: the check would pass on nothing"
    assert cross_namespace_reads(stack, env_name) == {}


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_namespace_with_external_secrets_has_its_own_store_and_role(stacks, env_name):
    data = stacks[f"{env_name}-data"]
    manifests = release_manifests(stacks, env_name)
    assert [m for m in manifests if m["kind"] == "ClusterSecretStore"] == []
    consumers = {m["metadata"]["namespace"] for m in manifests if m["kind"] == "ExternalSecret"
                 and m["spec"].get("secretStoreRef")}
    assert consumers
    stores = {m["metadata"]["namespace"]: m for m in manifests if m["kind"] == "SecretStore"}
    accounts = {m["metadata"]["namespace"]: m for m in manifests if m["kind"] == "ServiceAccount"
                and m["metadata"]["name"] == READER_SERVICE_ACCOUNT}
    for manifest in manifests:
        if manifest["kind"] == "ExternalSecret" and manifest["spec"].get("secretStoreRef"):
            assert manifest["spec"]["secretStoreRef"] == {"kind": "SecretStore", "name": STORE_NAME}
    for namespace in consumers:
        auth = stores[namespace]["spec"]["provider"]["aws"]["auth"]
        assert auth == {"jwt": {"serviceAccountRef": {"name": READER_SERVICE_ACCOUNT}}}, namespace
        role_arn = accounts[namespace]["metadata"]["annotations"][ROLE_ARN_ANNOTATION]
        [address] = [a for a in resources(data, "aws_iam_role") if f"aws_iam_role{a}arn" in role_arn]
        assert namespaces_of_role(address, data) == {namespace}


def test_the_check_finds_a_namespace_given_another_namespaces_secret(stacks):
    stack = copy.deepcopy(stacks["prod-data"])
    roles = {a: r for a, r in resources(stack, "aws_iam_role").items() if r["name"] == "mlops-prod-secrets-agentic"}
    [address] = roles
    monitoring = next(f"${{aws_secretsmanager_secret.{n}.arn}}" for n, s in
                      resources(stack, "aws_secretsmanager_secret").items() if s["name"].endswith("/grafana-admin"))
    for policy in resources(stack, "aws_iam_role_policy").values():
        if policy["role"] == f"${{aws_iam_role.{address}.id}}":
            document = json.loads(policy["policy"])
            document["Statement"][0]["Resource"].append(monitoring)
            policy["policy"] = json.dumps(document)
    assert cross_namespace_reads(stack, "prod") == {"agentic": {"mlops-prod/grafana-admin"}}


def test_the_check_finds_a_role_any_namespace_can_assume(stacks):
    stack = copy.deepcopy(stacks["prod-data"])
    for role in resources(stack, "aws_iam_role").values():
        if role["name"] == "mlops-prod-secrets-monitoring":
            trust = json.loads(role["assume_role_policy"])
            condition = trust["Statement"][0]["Condition"]
            sub = next(k for k in condition["StringEquals"] if k.endswith(":sub"))
            condition["StringLike"] = {sub: "system:serviceaccount:*:secrets-reader"}
            del condition["StringEquals"][sub]
            role["assume_role_policy"] = json.dumps(trust)
    found = cross_namespace_reads(stack, "prod")
    assert [k for k in found if k.startswith("any namespace")] and "mlops-prod/grafana-admin" in set().union(
        *found.values())


def test_the_check_finds_a_controller_that_reads_every_secret(stacks):
    stack = copy.deepcopy(stacks["prod-data"])
    everything = [f"${{aws_secretsmanager_secret.{n}.arn}}" for n in resources(stack, "aws_secretsmanager_secret")]
    controller = next(a for a, r in resources(stack, "aws_iam_role").items()
                      if r["name"].endswith("}-external-secrets"))
    stack["resource"]["aws_iam_role_policy"]["controller-reads-all"] = {
        "role": f"${{aws_iam_role.{controller}.id}}", "policy": json.dumps({"Statement": [
            {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": everything}]})}
    assert "external-secrets" in cross_namespace_reads(stack, "prod")
