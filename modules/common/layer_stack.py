"""The base of every layer's stack: one environment's layer is its own Terraform stack with its own state.

A layer reads what it needs from an earlier layer through cross-stack references (cdktf turns them into outputs and
``terraform_remote_state``), and never configures a provider from a resource of its own layer.
"""

from __future__ import annotations

from cdktf import S3Backend, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct

from platform_config.layers import layers_of
from platform_config.models import Environment


class LayerStack(TerraformStack):
    """A stack of one environment's layer: the AWS provider for that account and region, and an S3 backend
    with native locking whose key is ``<key_prefix>/<env>/<layer>.tfstate``."""

    def __init__(self, scope: Construct, *, environment: Environment, layer: str) -> None:
        allowed = layers_of(environment)
        if layer not in allowed:
            raise ValueError(f"layer {layer!r} of environment {environment.name} is not one of its layers "
                             f"({', '.join(allowed)}): list it in platform_config/layers.py")
        super().__init__(scope, f"{environment.name}-{layer}")
        self.environment = environment
        backend = environment.state_backend
        S3Backend(self, bucket=backend.bucket, key=f"{backend.key_prefix}/{environment.name}/{layer}.tfstate",
                  region=backend.region, encrypt=True, kms_key_id=backend.kms_key_arn)
        if backend.use_lockfile:
            # cdktf 0.21's S3Backend predates use_lockfile (Terraform >= 1.10).
            self.add_override("terraform.backend.s3.use_lockfile", True)
        AwsProvider(self, "aws", region=environment.region, allowed_account_ids=[environment.account_id],
                    default_tags=[AwsProviderDefaultTags(tags={**environment.tags, "Layer": layer})])
