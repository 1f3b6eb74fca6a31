"""EFS for datasets, models and shared files: encrypted, NFS from the nodes only, TLS only, backed up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.efs_access_point import (
    EfsAccessPoint,
    EfsAccessPointPosixUser,
    EfsAccessPointRootDirectory,
    EfsAccessPointRootDirectoryCreationInfo,
)
from cdktf_cdktf_provider_aws.efs_backup_policy import EfsBackupPolicy, EfsBackupPolicyBackupPolicy
from cdktf_cdktf_provider_aws.efs_file_system import EfsFileSystem, EfsFileSystemLifecyclePolicy
from cdktf_cdktf_provider_aws.efs_file_system_policy import EfsFileSystemPolicy
from cdktf_cdktf_provider_aws.efs_mount_target import EfsMountTarget
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from modules.common.iam import policy_document

#: Access points (and their root directories) the platform mounts.
ACCESS_POINTS = ("datasets", "models", "shared")
#: The POSIX identity files are created with through the access points.
POSIX_UID = POSIX_GID = 1000
NFS_PORT = 2049
#: What NFS clients may do. Root access is not granted: every mount goes through an access point that enforces its
#: POSIX user (the static ones, and the ones the CSI driver creates for ``efs-dynamic``), so no client needs uid 0.
CLIENT_ACTIONS = ("elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite")


class SharedFileSystem(Construct):
    """An EFS file system with a mount target per private subnet and an access point per purpose.

    Inputs (keyword-only):
      name: the file system's Name tag and security group name.
      kms_key_arn: the customer-managed key for encryption at rest.
      vpc_id: the VPC.
      subnets_by_zone: AZ -> private subnet id; one mount target in each.
      client_security_group_id: the only security group admitted on NFS (the nodes').
      client_role_arns: the IAM roles that mount (the nodes': the CSI driver's node plugin mounts with the
        ``iam`` option and the node's credentials); allowed to mount and write through a mount target only.
      backups: AWS Backup of the file system (default true).
      prevent_destroy: refuse destroy and replacement in Terraform (default true).
    Files move to Infrequent Access after 30 days and back on first access; throughput is elastic.
    Exposes ``file_system``, ``access_points`` by purpose, and ``security_group``.
    """

    def __init__(self, scope: Construct, id: str, *, name: str, kms_key_arn: str, vpc_id: str,
                 subnets_by_zone: Mapping[str, str], client_security_group_id: str,
                 client_role_arns: Sequence[str], backups: bool = True,
                 prevent_destroy: bool = True) -> None:
        super().__init__(scope, id)
        self.security_group = SecurityGroup(self, "security-group", name=f"{name}-efs", vpc_id=vpc_id,
                                            description=f"NFS to EFS {name} from the cluster's nodes only",
                                            tags={"Name": f"{name}-efs"})
        VpcSecurityGroupIngressRule(self, "nfs-from-nodes", security_group_id=self.security_group.id,
                                    ip_protocol="tcp", from_port=NFS_PORT, to_port=NFS_PORT,
                                    referenced_security_group_id=client_security_group_id,
                                    description="NFS from the cluster's nodes")
        self.file_system = EfsFileSystem(
            self, "file-system", encrypted=True, kms_key_id=kms_key_arn, performance_mode="generalPurpose",
            throughput_mode="elastic", tags={"Name": name},
            lifecycle_policy=[EfsFileSystemLifecyclePolicy(transition_to_ia="AFTER_30_DAYS"),
                              EfsFileSystemLifecyclePolicy(transition_to_primary_storage_class="AFTER_1_ACCESS")],
            lifecycle=TerraformResourceLifecycle(prevent_destroy=prevent_destroy))
        fs_id = self.file_system.id
        EfsBackupPolicy(self, "backup-policy", file_system_id=fs_id,
                        backup_policy=EfsBackupPolicyBackupPolicy(status="ENABLED" if backups else "DISABLED"))
        # Once a file system policy exists, EFS's default "any client through a mount target" no longer applies:
        # the clients that mount need an Allow of their own. The Deny keeps plain NFS out whoever asks.
        EfsFileSystemPolicy(self, "tls-only", file_system_id=fs_id, policy=policy_document([
            {"Sid": "MountAndWriteThroughMountTargets", "Effect": "Allow",
             "Principal": {"AWS": list(client_role_arns)}, "Action": list(CLIENT_ACTIONS),
             "Resource": self.file_system.arn,
             "Condition": {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}}},
            {"Sid": "DenyPlainNfs", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "*",
             "Resource": self.file_system.arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]))
        for zone, subnet_id in subnets_by_zone.items():
            EfsMountTarget(self, f"mount-target-{zone}", file_system_id=fs_id, subnet_id=subnet_id,
                           security_groups=[self.security_group.id])
        self.access_points = {
            purpose: EfsAccessPoint(
                self, f"access-point-{purpose}", file_system_id=fs_id, tags={"Name": f"{name}-{purpose}"},
                posix_user=EfsAccessPointPosixUser(uid=POSIX_UID, gid=POSIX_GID),
                root_directory=EfsAccessPointRootDirectory(
                    path=f"/{purpose}", creation_info=EfsAccessPointRootDirectoryCreationInfo(
                        owner_uid=POSIX_UID, owner_gid=POSIX_GID, permissions="0770")))
            for purpose in ACCESS_POINTS
        }
