"""The GPU and instance catalogue: one place for the hardware facts every rule is checked against.

The data lives in ``data/catalogue.yaml``; this module loads it once into frozen models and answers the
questions the environment rules ask ("which GPU does p5.48xlarge carry?", "does this MIG layout fit one GPU?").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

CATALOGUE_FILE = Path(__file__).with_name("data") / "catalogue.yaml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MigProfile(_Frozen):
    """One MIG profile of a GPU model: the slices one instance takes, and how many fit one GPU."""

    compute_slices: int = Field(ge=1)
    memory_slices: int = Field(ge=1)
    max_per_gpu: int = Field(ge=1)


class GpuModel(_Frozen):
    memory_gib: int = Field(gt=0)
    mig_profiles: dict[str, MigProfile]


class InstanceType(_Frozen):
    vcpu: int = Field(gt=0)
    memory_gib: int = Field(gt=0)
    gpus: int = Field(ge=0)
    gpu_model: str | None = None

    @property
    def is_gpu(self) -> bool:
        return self.gpus > 0


class ReplicaRange(_Frozen):
    min: int
    max: int


class SupportPhase(StrEnum):
    """Where a Kubernetes version is in the EKS support calendar on a given day."""

    UNRELEASED = "unreleased"
    STANDARD = "standard"
    EXTENDED = "extended"
    ENDED = "ended"


class KubernetesRelease(_Frozen):
    """One Kubernetes minor version in the EKS calendar: standard support, then extended support at extra cost per
    cluster hour, then EKS upgrades the cluster automatically."""

    released: date
    end_of_standard_support: date
    end_of_extended_support: date

    def phase(self, today: date) -> SupportPhase:
        if today < self.released:
            return SupportPhase.UNRELEASED
        if today > self.end_of_extended_support:
            return SupportPhase.ENDED
        if today > self.end_of_standard_support:
            return SupportPhase.EXTENDED
        return SupportPhase.STANDARD


class Catalogue(_Frozen):
    gpu_models: dict[str, GpuModel]
    mig_compute_slices_per_gpu: int
    mig_memory_slices_per_gpu: int
    instance_types: dict[str, InstanceType]
    time_slicing_replicas: ReplicaRange
    #: Minutes a GPU pod may take to become ready on an empty pool, by cause (scale from zero, MIG reconfiguration
    #: with a reboot, pulling a large image).
    gpu_pod_readiness_minutes: dict[str, int]
    #: The EKS release calendar: minor version -> its support dates.
    kubernetes_versions: dict[str, KubernetesRelease]

    @property
    def gpu_pod_readiness_seconds(self) -> int:
        """The longest a GPU pod may take to become ready on an empty pool: every cause in turn."""
        return 60 * sum(self.gpu_pod_readiness_minutes.values())

    def versions_in(self, today: date, *phases: SupportPhase) -> list[str]:
        """The calendar's versions that are in one of ``phases`` on ``today``, oldest first."""
        return [v for v, release in self.kubernetes_versions.items() if release.phase(today) in phases]

    def mig_layout_problem(self, gpu_model: str, layout: Mapping[str, int]) -> str | None:
        """Why ``layout`` (profile -> instances per GPU) does not fit one ``gpu_model`` GPU, or None if it fits.

        A layout fits when it uses only the model's profiles, each count is within the profile's maximum, and the
        compute and memory slices add up to at most what one GPU has (7 and 8).
        """
        profiles = self.gpu_models[gpu_model].mig_profiles
        if not profiles:
            return f"{gpu_model} has no MIG profiles in the catalogue; use time-slicing for this pool"
        unknown = sorted(set(layout) - set(profiles))
        if unknown:
            return f"profile(s) {', '.join(unknown)} do not exist on {gpu_model}; allowed: {', '.join(profiles)}"
        for name, count in layout.items():
            if count < 1 or count > profiles[name].max_per_gpu:
                return f"{name} x{count}: one {gpu_model} holds 1 to {profiles[name].max_per_gpu} of {name}"
        compute = sum(profiles[n].compute_slices * c for n, c in layout.items())
        memory = sum(profiles[n].memory_slices * c for n, c in layout.items())
        if compute > self.mig_compute_slices_per_gpu:
            return f"needs {compute} of {self.mig_compute_slices_per_gpu} compute slices of one GPU"
        if memory > self.mig_memory_slices_per_gpu:
            return f"needs {memory} of {self.mig_memory_slices_per_gpu} memory slices of one GPU"
        return None


@cache
def load_catalogue(path: Path = CATALOGUE_FILE) -> Catalogue:
    """The catalogue, parsed and validated once per process."""
    with path.open(encoding="utf-8") as handle:
        return Catalogue.model_validate(yaml.safe_load(handle))
