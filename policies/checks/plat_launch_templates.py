"""Launch templates of the nodes: IMDSv2 only with hop limit 1, KMS-encrypted volumes, no SSH key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories
from plat_common import PlatformCheck, block, blocks, is_set, is_true, scalar

LAUNCH_TEMPLATE = ["aws_launch_template"]


class LaunchTemplateImdsV2(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_6", name="Launch templates require IMDSv2 (http_tokens = required)",
            why="IMDSv1 answers any request, so an SSRF bug in a pod can read the node role's credentials",
            resources=LAUNCH_TEMPLATE, categories=[CheckCategories.IAM])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        options = block(conf, "metadata_options")
        if options is None:
            yield "no metadata_options block (the default allows IMDSv1)"
            return
        tokens = scalar(options, "http_tokens")
        if tokens != "required":
            yield f"metadata_options.http_tokens is {tokens!r}, not 'required'"


class LaunchTemplateHopLimit(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_7", name="Launch templates set the metadata hop limit to 1",
            why="with a hop limit above 1 every pod on the node can reach the instance metadata service and "
                "take the node role's credentials",
            resources=LAUNCH_TEMPLATE, categories=[CheckCategories.IAM])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        options = block(conf, "metadata_options") or {}
        limit = scalar(options, "http_put_response_hop_limit")
        if str(limit).strip() != "1":
            yield f"metadata_options.http_put_response_hop_limit is {limit!r}, not 1"


class LaunchTemplateVolumesEncryptedWithKms(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_8", name="Launch templates encrypt their EBS volumes with a customer KMS key",
            why="node volumes hold images, caches and model weights; a customer key keeps them unreadable "
                "outside the account and lets us revoke access",
            resources=LAUNCH_TEMPLATE, categories=[CheckCategories.ENCRYPTION])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        mappings = blocks(conf, "block_device_mappings")
        volumes = [(scalar(m, "device_name", "?"), ebs) for m in mappings for ebs in blocks(m, "ebs")]
        if not volumes:
            yield "no block_device_mappings with an ebs block: the root volume uses the AMI's unencrypted default"
        for device, ebs in volumes:
            if not is_true(ebs.get("encrypted")):
                yield f"{device}: ebs.encrypted is not true"
            if not is_set(ebs.get("kms_key_id")):
                yield f"{device}: ebs.kms_key_id is not set (AWS-managed key)"


class LaunchTemplateNoKeyPair(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_9", name="Launch templates have no SSH key pair",
            why="an SSH key is a long-lived shared credential for every node; nodes are reached through SSM",
            resources=LAUNCH_TEMPLATE, categories=[CheckCategories.NETWORKING])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        if is_set(conf.get("key_name")):
            yield f"key_name is {scalar(conf, 'key_name')!r}"


LaunchTemplateImdsV2()
LaunchTemplateHopLimit()
LaunchTemplateVolumesEncryptedWithKms()
LaunchTemplateNoKeyPair()
