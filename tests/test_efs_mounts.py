"""Every EFS volume the platform defines can be mounted under the synthesized file system policy, evaluated the way
IAM does (tests/iam_evaluation.py): an explicit Deny wins, then an Allow; nothing else allows. Once a file system
policy exists, EFS's default "any client through a mount target" no longer applies."""

import json

import pytest
import yaml

from iam_evaluation import ALLOW, DENY, Request, evaluate
from tests_support import application_manifests, one, resources

ENVIRONMENTS = ["dev", "staging", "prod"]
EFS_DRIVER = "efs.csi.aws.com"
MOUNT, WRITE = "elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"


def node_role_principal(stacks, env_name):
    """The nodes' role as the data stack names it: the role every node group runs as, through the cluster stack's
    output."""
    cluster = stacks[f"{env_name}-cluster"]
    [role] = {group["node_role_arn"] for group in resources(cluster, "aws_eks_node_group").values()}
    [output] = [name for name, body in cluster["output"].items() if body["value"] == role]
    return f"${{data.terraform_remote_state.cross-stack-reference-input-{env_name}-cluster.outputs.{output}}}"


def file_system_policy(stacks, env_name):
    return json.loads(one(stacks[f"{env_name}-data"], "aws_efs_file_system_policy")["policy"])


def file_system_arn(stacks, env_name):
    address = next(iter(resources(stacks[f"{env_name}-data"], "aws_efs_file_system")))
    return f"${{aws_efs_file_system.{address}.arn}}"


def efs_volumes(stacks, env_name):
    """(name, mount options, writable, TLS) of every EFS volume: the PersistentVolumes of the workloads and the EFS
    StorageClasses (whose provisioned volumes inherit the class's mount options). The driver mounts with TLS unless
    a volume sets ``encryptInTransit: "false"``."""
    volumes = []
    for release in resources(stacks[f"{env_name}-workloads"], "helm_release").values():
        if release["chart"] != "raw":
            continue
        objects = yaml.safe_load(release["values"][0])["resources"]
        # What an Argo CD Application among them deploys (the inference servers' volumes).
        objects += [m for a in objects if a["kind"] == "Application" for m in application_manifests(a)]
        for manifest in objects:
            csi = manifest.get("spec", {}).get("csi", {})
            if manifest["kind"] == "PersistentVolume" and csi.get("driver") == EFS_DRIVER:
                options = manifest["spec"].get("mountOptions", [])
                writable = any(mode.startswith("ReadWrite") for mode in manifest["spec"]["accessModes"])
                tls = "tls" in options or csi.get("volumeAttributes", {}).get("encryptInTransit") != "false"
                volumes.append((manifest["metadata"]["name"], options, writable, tls))
    for body in resources(stacks[f"{env_name}-platform"], "kubernetes_storage_class_v1").values():
        if body["storage_provisioner"] == EFS_DRIVER:
            volumes.append((f"StorageClass {body['metadata']['name']}", body.get("mount_options", []), True, True))
    return volumes


def refused_mounts(policy, volumes, *, node_role, file_system):
    """The mounts IAM would refuse: a volume mounted with ``iam`` is the node's role, without it an anonymous
    client; every mount goes through a mount target."""
    refused = []
    for name, options, writable, tls in volumes:
        principal = node_role if "iam" in options else None
        context = {"aws:SecureTransport": str(tls).lower(), "elasticfilesystem:AccessedViaMountTarget": "true"}
        for action in (MOUNT, WRITE) if writable else (MOUNT,):
            decision = evaluate(policy, Request(action=action, resource=file_system, principal=principal,
                                                context=context))
            if decision != ALLOW:
                refused.append(f"{name}: {action} -> {decision}")
    return refused


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_efs_volume_of_the_platform_can_be_mounted(stacks, env_name):
    volumes = efs_volumes(stacks, env_name)
    assert any(name.startswith("StorageClass") for name, *_ in volumes)
    assert any(not name.startswith("StorageClass") for name, *_ in volumes)
    assert refused_mounts(file_system_policy(stacks, env_name), volumes, node_role=node_role_principal(
        stacks, env_name), file_system=file_system_arn(stacks, env_name)) == []


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_a_tls_mount_by_a_node_through_a_mount_target_is_allowed_and_a_plain_one_denied(stacks, env_name):
    policy, node = file_system_policy(stacks, env_name), node_role_principal(stacks, env_name)
    fs = file_system_arn(stacks, env_name)

    def mount(action, *, tls, principal=node, mount_target=True):
        return evaluate(policy, Request(action=action, resource=fs, principal=principal, context={
            "aws:SecureTransport": str(tls).lower(),
            "elasticfilesystem:AccessedViaMountTarget": str(mount_target).lower()}))

    assert mount(MOUNT, tls=True) == ALLOW
    assert mount(WRITE, tls=True) == ALLOW
    assert mount(MOUNT, tls=False) == DENY
    assert mount(WRITE, tls=False) == DENY
    # Root access is not needed (access points enforce their POSIX user), so it is not allowed.
    assert mount("elasticfilesystem:ClientRootAccess", tls=True) != ALLOW
    # Not through a mount target, or anonymous (mounted without the iam option): not allowed.
    assert mount(MOUNT, tls=True, mount_target=False) != ALLOW
    assert mount(MOUNT, tls=True, principal=None) != ALLOW


def test_with_only_the_tls_deny_every_mount_is_refused(stacks):
    """The defect put back: the policy as it was, with the Deny only. The same rule must then fail."""
    deny_only = {"Statement": [s for s in file_system_policy(stacks, "prod")["Statement"] if s["Effect"] == "Deny"]}
    assert deny_only["Statement"]
    volumes = efs_volumes(stacks, "prod")
    refused = refused_mounts(deny_only, volumes, node_role=node_role_principal(stacks, "prod"),
                             file_system=file_system_arn(stacks, "prod"))
    assert len(refused) == sum(2 if writable else 1 for *_, writable, _ in volumes)


def test_a_volume_mounted_without_the_iam_option_would_be_refused(stacks):
    """Without ``iam`` the client is anonymous, and the policy allows only the nodes' role."""
    [(name, _, writable, tls), *_] = [v for v in efs_volumes(stacks, "prod") if not v[0].startswith("StorageClass")]
    refused = refused_mounts(file_system_policy(stacks, "prod"), [(name, ["tls"], writable, tls)],
                             node_role=node_role_principal(stacks, "prod"), file_system=file_system_arn(stacks, "prod"))
    assert refused
