"""The platform's Secrets Manager secrets: created encrypted and protected, never given a value by Terraform."""

from __future__ import annotations

from collections.abc import Mapping

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.secretsmanager_secret import SecretsmanagerSecret
from constructs import Construct

from platform_config.data_layer import PlatformSecret, secret_name


class PlatformSecrets(Construct):
    """One secret per entry of the secrets catalogue, named ``mlops-<env>/<key>``.

    Inputs (keyword-only):
      environment_name: prefix of the secret names.
      secrets: key -> catalogue entry (``platform_config.data_layer.platform_secrets()``).
      kms_key_arn: the customer-managed key the values are encrypted with.
      recovery_window_days: how long a deleted secret can be restored.
      prevent_destroy: refuse destroy and replacement in Terraform (default true).
    Values are put by an operator (``aws secretsmanager put-secret-value``); there is no ``secret_version``
    here, so no value can reach the code or the state. Exposes ``secrets`` by key.
    """

    def __init__(self, scope: Construct, id: str, *, environment_name: str, secrets: Mapping[str, PlatformSecret],
                 kms_key_arn: str, recovery_window_days: int, prevent_destroy: bool = True) -> None:
        super().__init__(scope, id)
        self.secrets = {
            key: SecretsmanagerSecret(
                self, key, name=secret_name(environment_name, key), description=entry.description,
                kms_key_id=kms_key_arn, recovery_window_in_days=recovery_window_days,
                tags={"mlops-platform/synced-to": " ".join(entry.synced_to)},
                lifecycle=TerraformResourceLifecycle(prevent_destroy=prevent_destroy))
            for key, entry in secrets.items()
        }
