"""Helm releases: an exact chart version from an HTTPS or OCI repository, so a plan installs what was reviewed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories
from plat_common import PlatformCheck, is_set, scalar

HELM_RELEASE = ["helm_release"]
#: An exact SemVer 2 version, optionally with Helm's customary leading ``v`` (gpu-operator's v26.7.0).
EXACT_VERSION = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$")
SECURE_SCHEMES = ("https://", "oci://")


class HelmReleaseExactVersion(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_14", name="Helm releases pin an exact chart version",
            why="an empty or ranged version installs whatever the repository serves at apply time: unreviewed "
                "and different per environment",
            resources=HELM_RELEASE, categories=[CheckCategories.SUPPLY_CHAIN])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        version = scalar(conf, "version")
        if not is_set(version):
            yield "version is not set (latest chart at apply time)"
        elif not isinstance(version, str) or not EXACT_VERSION.match(version.strip()):
            yield f"version {version!r} is not one exact version (no ranges, wildcards or expressions)"


class HelmReleaseSecureRepository(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_15", name="Helm releases come from an https:// or oci:// repository",
            why="a chart fetched over plain HTTP or from an unnamed source can be swapped in transit or by whoever "
                "controls the path",
            resources=HELM_RELEASE, categories=[CheckCategories.SUPPLY_CHAIN])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        repository = scalar(conf, "repository")
        chart = scalar(conf, "chart")
        if is_set(repository):
            if not str(repository).strip().startswith(SECURE_SCHEMES):
                yield f"repository {repository!r} is neither https:// nor oci://"
        elif not (isinstance(chart, str) and chart.strip().startswith(SECURE_SCHEMES)):
            yield f"no repository, and chart {chart!r} is not an https:// or oci:// reference"


HelmReleaseExactVersion()
HelmReleaseSecureRepository()
