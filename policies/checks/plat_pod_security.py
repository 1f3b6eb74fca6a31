"""Each namespace enforces the Pod Security level of the reviewed allow-list, platform_config/data/namespaces.yaml,
and a privileged entry there says why.

The platform generates the namespaces from the same file, so a code change that sets another level, or a
namespace added without an entry, shows up here; a new privileged namespace needs its reason written in the file
a reviewer reads. The gate tells checkov where the file is (``PLATFORM_CONFIG_DATA``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from checkov.common.models.enums import CheckCategories
from plat_common import NotApplicable, PlatformCheck, block, metadata_maps, scalar

NAMESPACES = ["kubernetes_namespace_v1", "kubernetes_namespace"]
ENFORCE = "pod-security.kubernetes.io/enforce"
LEVELS = ("restricted", "baseline", "privileged")


def _data_dir() -> Path:
    configured = os.environ.get("PLATFORM_CONFIG_DATA")
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / "platform_config" / "data"


@cache
def allow_list() -> dict[str, dict[str, Any]]:
    """Namespace -> its entry (``pod_security``, ``reason``), application and system namespaces together."""
    document = yaml.safe_load((_data_dir() / "namespaces.yaml").read_text(encoding="utf-8")) or {}
    return {name: entry for group in document.values() for name, entry in (group or {}).items()}


class NamespacePodSecurityFromAllowList(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_28",
            name="Namespaces enforce the Pod Security level of the reviewed allow-list; privileged only with a reason",
            why="a namespace on privileged (or without a level) lets any pod in it mount the host, join its "
                "network and run as root on the node: one compromised pod is the node and its credentials",
            resources=NAMESPACES, categories=[CheckCategories.KUBERNETES])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        _, labels = metadata_maps(conf)
        name = scalar(block(conf, "metadata") or {}, "name")
        if not isinstance(name, str) or "${" in name:
            raise NotApplicable
        entry = allow_list().get(name)
        enforced = (labels or {}).get(ENFORCE)
        if entry is None:
            yield (f"namespace {name} is not in platform_config/data/namespaces.yaml, the reviewed list of Pod "
                   f"Security levels (it enforces {enforced!r})")
            return
        level = entry.get("pod_security")
        if level not in LEVELS:
            yield f"namespaces.yaml gives {name} the level {level!r}, not one of {', '.join(LEVELS)}"
        elif level == "privileged" and len(str(entry.get("reason") or "").strip()) < 20:
            yield f"namespaces.yaml puts {name} on privileged without a reason"
        if enforced != level:
            yield f"label {ENFORCE} is {enforced!r}, the reviewed level is {level!r}"


NamespacePodSecurityFromAllowList()
