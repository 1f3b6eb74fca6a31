"""EKS managed add-ons; each add-on that calls AWS gets its own Pod Identity role."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.eks_addon import EksAddon, EksAddonPodIdentityAssociation
from constructs import Construct

from modules.common.iam import POD_IDENTITY_SERVICE, ServiceRole
from modules.common.kms import EncryptionKey


@dataclass(frozen=True)
class AddonSpec:
    """What one add-on needs: its configuration values, and for AWS access its service account and policy."""

    configuration: Mapping | None = None
    service_account: str | None = None
    managed_policy: str | None = None
    #: The role may use the cluster's volume key (the EBS CSI driver creates encrypted volumes with it).
    uses_volume_key: bool = False


#: Installed before the node groups: nodes need networking and Pod Identity from their first minute.
NETWORKING_ADDONS = {
    "vpc-cni": AddonSpec(configuration={"enableNetworkPolicy": "true"}),  # enforce Kubernetes NetworkPolicies
    "kube-proxy": AddonSpec(),
    "eks-pod-identity-agent": AddonSpec(),
}
#: Installed after the node groups: their pods need nodes to run on.
WORKLOAD_ADDONS = {
    "coredns": AddonSpec(),
    "aws-ebs-csi-driver": AddonSpec(service_account="ebs-csi-controller-sa", uses_volume_key=True,
                                    managed_policy="service-role/AmazonEBSCSIDriverPolicy"),
    "aws-efs-csi-driver": AddonSpec(service_account="efs-csi-controller-sa",
                                    managed_policy="service-role/AmazonEFSCSIDriverPolicy"),
}


class ManagedAddons(Construct):
    """A set of EKS managed add-ons of one cluster.

    Inputs (keyword-only):
      cluster_name: the EKS cluster (a reference, so the add-ons wait for it).
      addons: add-on name -> ``AddonSpec`` (``NETWORKING_ADDONS`` or ``WORKLOAD_ADDONS``).
      volume_key_arn: the KMS key for add-ons with ``uses_volume_key`` (default none).
      depends_on: what the add-ons wait for, e.g. the node groups (default nothing).
    Versions are left to EKS (the default for the cluster's Kubernetes version at creation). On create and on
    update, conflicts are resolved in favour of this configuration: EKS bootstraps self-managed vpc-cni,
    kube-proxy and CoreDNS in every new cluster, and the managed add-on must take those objects over, or the
    first create fails on the fields they already set. Exposes ``addons`` by name.
    """

    def __init__(self, scope: Construct, id: str, *, cluster_name: str, addons: Mapping[str, AddonSpec],
                 volume_key_arn: str | None = None, depends_on: Sequence = ()) -> None:
        super().__init__(scope, id)
        self.addons: dict[str, EksAddon] = {}
        for name, spec in addons.items():
            association = None
            if spec.service_account:
                key_access = EncryptionKey.statements_to_use([volume_key_arn]) if spec.uses_volume_key else ()
                role = ServiceRole(self, f"{name}-role", name=f"{cluster_name}-{name}", service=POD_IDENTITY_SERVICE,
                                   managed_policies=[spec.managed_policy], inline_policy=key_access)
                association = [EksAddonPodIdentityAssociation(role_arn=role.arn, service_account=spec.service_account)]
            self.addons[name] = EksAddon(
                self, name, cluster_name=cluster_name, addon_name=name, resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                configuration_values=json.dumps(spec.configuration) if spec.configuration else None,
                pod_identity_association=association, depends_on=list(depends_on) or None)
