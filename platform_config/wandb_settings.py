"""Settings of the self-managed Weights & Biases server, as an environment file writes them
(``workloads.wandb.server``). What the server needs in the cluster is built from them in
``platform_config/wandb_server.py``."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

_FQDN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
_ACM_CERTIFICATE = r"^arn:aws:acm:[a-z0-9-]+:\d{12}:certificate/[\w-]+$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WandbDatabase(_Frozen):
    """The server's RDS MySQL. Multi-AZ follows the environment's ``high_availability``."""

    #: Major version. W&B's requirements page asks for MySQL 8.4.x (its older text: 8.0.32+); RDS standard support
    #: of 8.0 ended 2026-07-31 (extended support is billed). Minor versions are upgraded by RDS.
    mysql_version: Literal["8.0", "8.4"] = "8.4"
    #: W&B's AWS module sizes its smallest deployment on db.r6g.large.
    instance_class: Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")] = "db.r6g.large"
    allocated_storage_gib: Annotated[int, Field(ge=20, le=65536)] = 100
    #: Storage autoscaling ceiling (default 1000 GiB).
    max_allocated_storage_gib: Annotated[int, Field(ge=20, le=65536)] = 1000
    backup_retention_days: Annotated[int, Field(ge=1, le=35)] = 14

    @field_validator("max_allocated_storage_gib")
    @classmethod
    def _ceiling_above_start(cls, ceiling: int, info: ValidationInfo) -> int:
        start = info.data.get("allocated_storage_gib")
        if start is not None and ceiling < start:
            raise ValueError(f"max_allocated_storage_gib {ceiling} can't be less than allocated_storage_gib {start}")
        return ceiling


class WandbServer(_Frozen):
    """Where and how the self-managed server is reached: an ALB (AWS Load Balancer Controller) with TLS.

    TLS is always required: the SDK sends its API key with every request and the platform's ``base_url`` is
    https only. The certificate is an ACM certificate in the environment's region covering ``host``; a DNS record
    for ``host`` pointing at the ALB is made outside this repository.
    """

    #: The server's DNS name (no scheme); ``workloads.wandb.base_url`` must be ``https://<host>``.
    host: Annotated[str, Field(pattern=_FQDN, max_length=253)]
    certificate_arn: Annotated[str, Field(pattern=_ACM_CERTIFICATE)]
    scheme: Literal["internal", "internet-facing"] = "internal"
    #: Source CIDRs the ALB admits (default: the controller's default, i.e. anyone who can reach it).
    inbound_cidrs: list[IPv4Network] = []
    database: WandbDatabase = WandbDatabase()

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    @property
    def certificate_region(self) -> str:
        return self.certificate_arn.split(":")[3]
