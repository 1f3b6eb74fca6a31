"""The first apply of an environment: what AWS, EKS, Kubernetes and Helm would refuse or wait for in vain.

Each rule is stated the way the receiving system applies it to the synthesized stacks, and each has a fixture with
the defect put back:

- KMS refuses a key policy that names a principal that does not exist: a service-linked role named by a key policy
  is created by the key's own stack or by a stack it depends on (or the account already has it);
- EKS bootstraps self-managed vpc-cni, kube-proxy and CoreDNS in every new cluster: their managed add-ons take the
  objects over on create (or the cluster does not bootstrap them);
- creating a node group waits for its desired nodes: nothing the cluster layer needs waits for a GPU pool, where
  capacity or quota may be missing;
- a waiting Helm release whose pods need a GPU node allows for a node from zero, a MIG reboot and a large image.
"""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml
from cdktf import TerraformStack
from cdktf import Testing as CdktfTesting
from cdktf_cdktf_provider_aws.provider import AwsProvider

from platform_config.catalogue import load_catalogue
from platform_config.models import Account
from tests_support import resources

SERVICE_ROLE_ARN = re.compile(r"^arn:aws:iam::\d{12}:role/aws-service-role/(?P<service>[\w.-]+)/(?P<name>\w+)$")
REMOTE_OUTPUT = re.compile(r"^\$\{data\.terraform_remote_state\.cross-stack-reference-input-(?P<stack>[\w-]+)"
                           r"\.outputs\.(?P<output>[\w-]+)\}$")


def _key_policy_principals(stack: dict) -> list[str]:
    principals = []
    for key in resources(stack, "aws_kms_key").values():
        for statement in json.loads(key["policy"])["Statement"]:
            aws = statement.get("Principal", {}).get("AWS", [])
            principals += [aws] if isinstance(aws, str) else aws
    return principals


def _is_service_linked_role(stack: dict, reference: str) -> bool:
    match = re.fullmatch(r"\$\{aws_iam_service_linked_role\.([\w-]+)\.arn\}", reference)
    return bool(match) and match[1] in resources(stack, "aws_iam_service_linked_role")


def key_principals_missing_at_creation(stack_name: str, stacks: dict, manifest: dict,
                                       account_has_autoscaling_role: bool) -> list[str]:
    """Principals of the stack's key policies that may not exist when the key is created: a service-linked role
    ARN written out (unless the account has the role), or a reference that does not lead to an
    ``aws_iam_service_linked_role`` of this stack or of a stack applied before it."""
    stack = stacks[stack_name]
    applied_before = set(manifest["stacks"][stack_name].get("dependencies", []))
    missing = []
    for principal in _key_policy_principals(stack):
        if literal := SERVICE_ROLE_ARN.match(principal):
            if not (literal["name"] == "AWSServiceRoleForAutoScaling" and account_has_autoscaling_role):
                missing.append(f"{principal}: written out; nothing creates it before the key")
        elif remote := REMOTE_OUTPUT.match(principal):
            origin = stacks.get(remote["stack"], {})
            value = (origin.get("output") or {}).get(remote["output"], {}).get("value", "")
            if remote["stack"] not in applied_before or not _is_service_linked_role(origin, value):
                missing.append(f"{principal}: not a service-linked role of a stack applied before {stack_name}")
        elif principal.startswith("${") and not _is_service_linked_role(stack, principal):
            missing.append(f"{principal}: not a service-linked role of this stack")
    return missing


@pytest.fixture(scope="module")
def manifest(synth_outdir) -> dict:
    return json.loads((synth_outdir / "manifest.json").read_text())


def test_every_service_linked_role_a_key_policy_names_exists_before_the_key(stacks, manifest, stack_environments):
    for stack_name, environment in stack_environments.items():
        assert key_principals_missing_at_creation(
            stack_name, stacks, manifest, environment.account.autoscaling_service_linked_role_exists) == []
    named = [p for s in stacks.values() for p in _key_policy_principals(s) if REMOTE_OUTPUT.match(p)]
    assert named, "the cluster keys name the Auto Scaling service-linked role created by the network layer"


def test_a_key_policy_naming_the_autoscaling_role_written_out_is_refused_unless_the_account_has_it(
        stacks, manifest):
    broken = copy.deepcopy(stacks)
    account_id = broken["prod-network"]["provider"]["aws"][0]["allowed_account_ids"][0]
    literal = f"arn:aws:iam::{account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    for key in resources(broken["prod-cluster"], "aws_kms_key").values():
        key["policy"] = re.sub(r"\$\{data\.terraform_remote_state\.[^}]+service_linked_role[^}]+\}", literal,
                               key["policy"])
    assert key_principals_missing_at_creation("prod-cluster", broken, manifest, False) != []
    assert key_principals_missing_at_creation("prod-cluster", broken, manifest, True) == []
    unordered = copy.deepcopy(manifest)
    unordered["stacks"]["prod-cluster"]["dependencies"].remove("prod-network")
    assert key_principals_missing_at_creation("prod-cluster", stacks, unordered, False) != []


def test_an_account_that_already_has_the_autoscaling_role_gets_it_named_not_created_again(environments):
    """IAM refuses a second AWSServiceRoleForAutoScaling in one account."""
    from modules.network.service_linked_roles import AutoscalingServiceLinkedRole

    for exists in (False, True):
        environment = environments["prod"].model_copy(
            update={"account": Account(autoscaling_service_linked_role_exists=exists)})
        stack = TerraformStack(CdktfTesting.app(), "test")
        AwsProvider(stack, "aws", region=environment.region)
        role = AutoscalingServiceLinkedRole(stack, "role", environment=environment)
        synthesized = json.loads(CdktfTesting.synth(stack))
        created = resources(synthesized, "aws_iam_service_linked_role")
        assert len(created) == (0 if exists else 1)
        if exists:
            assert role.arn == (f"arn:aws:iam::{environment.account_id}:role/aws-service-role/"
                                "autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling")


# --- add-ons that replace what EKS bootstraps ---------------------------------------------------------------------

#: EKS installs these as self-managed objects in every new cluster unless bootstrap_self_managed_addons is false.
EKS_BOOTSTRAPPED = {"vpc-cni", "kube-proxy", "coredns"}


def addons_that_conflict_on_create(stack: dict) -> list[str]:
    """Managed add-ons whose create would meet the self-managed copy EKS bootstrapped and not take it over."""
    clusters = resources(stack, "aws_eks_cluster").values()
    if clusters and all(c.get("bootstrap_self_managed_addons") is False for c in clusters):
        return []
    return sorted(a["addon_name"] for a in resources(stack, "aws_eks_addon").values()
                  if a["addon_name"] in EKS_BOOTSTRAPPED and a.get("resolve_conflicts_on_create") != "OVERWRITE")


def test_managed_addons_take_over_what_eks_bootstrapped_on_create(stacks):
    cluster_stacks = [s for s in stacks.values() if resources(s, "aws_eks_cluster")]
    assert cluster_stacks
    for stack in cluster_stacks:
        assert {a["addon_name"] for a in resources(stack, "aws_eks_addon").values()} >= EKS_BOOTSTRAPPED
        assert addons_that_conflict_on_create(stack) == []


def test_the_addon_rule_finds_an_addon_without_conflict_resolution_on_create(stacks):
    stack = copy.deepcopy(stacks["prod-cluster"])
    for addon in resources(stack, "aws_eks_addon").values():
        if addon["addon_name"] == "coredns":
            del addon["resolve_conflicts_on_create"]
    assert addons_that_conflict_on_create(stack) == ["coredns"]
    for cluster in resources(stack, "aws_eks_cluster").values():
        cluster["bootstrap_self_managed_addons"] = False
    assert addons_that_conflict_on_create(stack) == []


# --- nothing waits for GPU capacity -------------------------------------------------------------------------------

def _gpu_node_groups(stack: dict) -> set[str]:
    return {f"aws_eks_node_group.{name}" for name, group in resources(stack, "aws_eks_node_group").items()
            if any(t["key"] == "nvidia.com/gpu" for t in group.get("taint") or [])}


def waits_for_gpu_capacity(stack: dict) -> list[str]:
    """Resources of a cluster stack that wait for a GPU node group (whose creation waits for its desired nodes),
    and add-ons with pods that have no CPU node group to wait for."""
    gpu_groups = _gpu_node_groups(stack)
    cpu_groups = {f"aws_eks_node_group.{n}" for n in resources(stack, "aws_eks_node_group")} - gpu_groups
    problems = []
    for resource_type, items in stack["resource"].items():
        for name, body in items.items():
            waiting = gpu_groups & set(body.get("depends_on") or [])
            if waiting:
                problems.append(f"{resource_type}.{name} waits for {', '.join(sorted(waiting))}")
    for addon in resources(stack, "aws_eks_addon").values():
        if addon["addon_name"] in ("coredns", "aws-ebs-csi-driver", "aws-efs-csi-driver") and \
                not cpu_groups & set(addon.get("depends_on") or []):
            problems.append(f"{addon['addon_name']} does not wait for a CPU node group to run on")
    return problems


def test_nothing_in_the_cluster_layer_waits_for_a_gpu_pool_and_cluster_addons_wait_for_cpu_nodes(stacks):
    for name, stack in stacks.items():
        if resources(stack, "aws_eks_node_group"):
            assert _gpu_node_groups(stack), name
            assert waits_for_gpu_capacity(stack) == [], name


def test_the_capacity_rule_finds_coredns_waiting_for_every_pool(stacks):
    stack = copy.deepcopy(stacks["prod-cluster"])
    every_group = [f"aws_eks_node_group.{n}" for n in resources(stack, "aws_eks_node_group")]
    for addon in resources(stack, "aws_eks_addon").values():
        if addon["addon_name"] == "coredns":
            addon["depends_on"] = every_group
    assert len(waits_for_gpu_capacity(stack)) == 1


# --- Helm releases whose pods need a GPU node --------------------------------------------------------------------

#: What ``helm install --wait`` waits for (Jobs only with wait_for_jobs); a custom resource such as a training
#: runtime is a template that starts no pod at install.
HELM_WAITS_FOR = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}


def _requests_gpus(value, *, wait_for_jobs: bool = False) -> bool:
    """Whether any pod spec inside ``value`` (a values tree) that the release waits for has a container asking for
    an nvidia.com resource."""
    waited_for = HELM_WAITS_FOR | ({"Job"} if wait_for_jobs else set())
    if isinstance(value, dict) and "apiVersion" in value and value.get("kind") not in waited_for:
        return False
    if isinstance(value, dict):
        for container in value.get("containers") or [] if isinstance(value.get("containers"), list) else []:
            wanted = {**(container.get("resources") or {}).get("limits", {}),
                      **(container.get("resources") or {}).get("requests", {})}
            if any(str(name).startswith("nvidia.com/") for name in wanted):
                return True
        return any(_requests_gpus(v, wait_for_jobs=wait_for_jobs) for v in value.values())
    if isinstance(value, list):
        return any(_requests_gpus(v, wait_for_jobs=wait_for_jobs) for v in value)
    return False


def releases_giving_up_before_gpu_pods_are_ready(stack: dict) -> list[str]:
    """Waiting Helm releases with GPU pods whose timeout is shorter than a GPU pod may take on an empty pool."""
    budget = load_catalogue().gpu_pod_readiness_seconds
    problems = []
    for release in resources(stack, "helm_release").values():
        values = [yaml.safe_load(text) for text in release.get("values") or []]
        if release.get("wait", True) and _requests_gpus(values, wait_for_jobs=release.get("wait_for_jobs", False)) \
                and release.get("timeout", 300) < budget:
            problems.append(f"{release['name']}: waits {release.get('timeout', 300)} s for GPU pods; an empty "
                            f"pool needs up to {budget} s")
    return problems


def test_waiting_releases_with_gpu_pods_allow_for_scale_from_zero_a_mig_reboot_and_a_large_image(stacks):
    for name, stack in stacks.items():
        assert releases_giving_up_before_gpu_pods_are_ready(stack) == [], name


#: A Deployment on the MIG pool, as a release of manifests would carry it.
GPU_DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "server", "namespace": "inference"},
                  "spec": {"template": {"spec": {"containers": [{"name": "server", "image": "server:1", "resources": {
                      "limits": {"nvidia.com/mig-3g.40gb": 1}}}]}}}}


@pytest.mark.parametrize(("release_settings", "refused"), [
    ({"timeout": 600}, True), ({"timeout": 600, "wait": False}, False),
    ({"timeout": load_catalogue().gpu_pod_readiness_seconds}, False),
], ids=["waits 600 s", "does not wait", "waits the whole budget"])
def test_the_release_rule_finds_a_release_that_gives_up_on_gpu_pods(stacks, release_settings, refused):
    stack = copy.deepcopy(stacks["prod-workloads"])
    stack["resource"]["helm_release"]["gpu-server"] = {
        "name": "gpu-server", "values": [yaml.safe_dump({"resources": [GPU_DEPLOYMENT]})], **release_settings}
    assert bool(releases_giving_up_before_gpu_pods_are_ready(stack)) is refused


def test_a_custom_resource_with_a_gpu_pod_template_is_not_waited_for(stacks):
    stack = copy.deepcopy(stacks["prod-workloads"])
    runtime = {**GPU_DEPLOYMENT, "apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "ClusterTrainingRuntime"}
    stack["resource"]["helm_release"]["runtimes"] = {
        "name": "runtimes", "values": [yaml.safe_dump({"resources": [runtime]})], "timeout": 600}
    assert releases_giving_up_before_gpu_pods_are_ready(stack) == []
