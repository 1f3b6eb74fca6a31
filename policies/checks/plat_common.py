"""Helpers and data shared by the platform checks (no check lives here).

checkov's terraform_json parser hands a check each attribute wrapped in a list (``{"ami_type": ["AL2023"]}``),
a nested block as a list of dicts whatever cdktf wrote (an object or a list), a list of scalars as a list in a
list, and turns the strings "true"/"false" into booleans except in tags. The helpers below accept every one of
those shapes, and the raw cdktf JSON as well, so a check does not depend on which one it gets.

checkov imports this file by its file name (``plat_common``) like every file of the folder; the name is
prefixed so it cannot shadow a real module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

#: Instance families that carry NVIDIA GPUs (AWS accelerated computing, Nov 2026). AMD (g4ad), Inferentia,
#: Trainium and Gaudi families are left out: the NVIDIA AMI, device plugin and sharing configuration do not
#: apply to them. One place: extend it when a new family is adopted.
NVIDIA_GPU_INSTANCE_FAMILIES = frozenset({
    "p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200", "p6e-gb200",
    "g4dn", "g5", "g5g", "g6", "g6e", "g6f", "gr6", "gr6f",
})

GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
GPU_TAINT_KEY = "nvidia.com/gpu"
#: The EKS API's spelling of Kubernetes' NoSchedule.
GPU_TAINT_EFFECT = "NO_SCHEDULE"
SHARING_LABELS = ("nvidia.com/device-plugin.config", "nvidia.com/mig.config")

_LINE_KEYS = frozenset({"__startline__", "__endline__"})
_REFERENCE = re.compile(r"^\$\{.+\}$", re.DOTALL)


def unwrap(value: Any) -> Any:
    """A scalar attribute without checkov's list wrappers: ``["x"]`` and ``[["x"]]`` become ``"x"``."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def scalar(conf: dict[str, Any], key: str, default: Any = None) -> Any:
    """The value of a scalar attribute, or ``default`` when it is absent or null."""
    value = unwrap(conf.get(key))
    return default if value is None or value == [] else value


def scalars(conf: dict[str, Any], key: str) -> list[Any]:
    """A list attribute as a flat list of scalars (``[["a", "b"]]`` or ``["a", "b"]`` -> ``["a", "b"]``); an
    absent attribute gives an empty list. An element may be a ``${...}`` expression: see ``is_reference``."""
    flat: list[Any] = []

    def walk(item: Any) -> None:
        if isinstance(item, list):
            for element in item:
                walk(element)
        elif item is not None:
            flat.append(item)

    walk(conf.get(key))
    return flat


def blocks(conf: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The nested blocks named ``key`` as a list of dicts, whether written as an object, a list of objects or
    wrapped once more by checkov. An absent block gives an empty list."""
    found: list[dict[str, Any]] = []

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            found.append(item)
        elif isinstance(item, list):
            for element in item:
                walk(element)

    walk(conf.get(key))
    return found


def block(conf: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The first nested block named ``key``, or None."""
    found = blocks(conf, key)
    return found[0] if found else None


def mapping(conf: dict[str, Any], key: str) -> dict[str, Any] | None:
    """A map attribute (``labels``, ``tags``) as a plain dict of unwrapped values: empty when absent, None when
    it is one ``${...}`` expression (its keys are unknown here)."""
    found = block(conf, key)
    if found is None:
        return None if is_reference(unwrap(conf.get(key))) else {}
    return {k: unwrap(v) for k, v in found.items() if k not in _LINE_KEYS}


def is_reference(value: Any) -> bool:
    """True for a whole-string Terraform expression such as ``${aws_kms_key.cluster.arn}``."""
    return isinstance(value, str) and bool(_REFERENCE.match(value.strip()))


def is_true(value: Any) -> bool:
    """True for ``true`` however it was written (bool or string)."""
    value = unwrap(value)
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def is_false(value: Any) -> bool:
    value = unwrap(value)
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def is_set(value: Any) -> bool:
    """True for a non-empty value (a non-blank string, a number, a bool, a non-empty collection)."""
    value = unwrap(value)
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | dict):
        return bool(value)
    return True


def instance_family(instance_type: str) -> str:
    """``p4de.24xlarge`` -> ``p4de``."""
    return instance_type.split(".", 1)[0].strip().lower()


def is_gpu_node_group(conf: dict[str, Any]) -> bool:
    """A node group is a GPU pool when its AMI type is an NVIDIA/GPU one or its labels say the GPU is present."""
    ami_type = scalar(conf, "ami_type", "")
    if isinstance(ami_type, str) and ("NVIDIA" in ami_type.upper() or "GPU" in ami_type.upper()):
        return True
    labels = mapping(conf, "labels") or {}
    return GPU_PRESENT_LABEL in labels and not is_false(labels[GPU_PRESENT_LABEL])


class NotApplicable(Exception):
    """Raised by ``PlatformCheck.problems`` when the resource is outside the check's scope (a CPU pool for a
    GPU rule): checkov then records no result for it."""


class PlatformCheck(BaseResourceCheck):
    """A check that lists what is wrong with a resource: no problem passes, any problem fails, and the problems
    become the result's ``details`` (the gate prints them). ``why`` is the one line the gate prints next to a
    failure; it travels as checkov's ``guideline``."""

    def __init__(self, *, id: str, name: str, why: str, resources: Iterable[str],
                 categories: Iterable[CheckCategories]) -> None:
        super().__init__(name=name, id=id, categories=list(categories), supported_resources=list(resources),
                         guideline=why)

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        try:
            problems = list(self.problems(conf))
        except NotApplicable:
            return CheckResult.UNKNOWN
        if problems:
            self.details.extend(problems)
            return CheckResult.FAILED
        return CheckResult.PASSED

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        raise NotImplementedError


# --- helpers of the namespace, data-layer and IAM checks (plat_namespaces.py, plat_data_*.py, plat_iam_*.py) ---

def as_list(value: Any) -> list[Any]:
    """A JSON policy field that may be one value or a list (``"Action": "s3:*"`` or ``["s3:*"]``) as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def plain(value: Any) -> Any:
    """A parsed JSON document without checkov's wrappers: every one-element list becomes its element and the
    ``__startline__``/``__endline__`` keys go. For IAM documents that changes nothing (``"Action": ["x"]`` and
    ``"Action": "x"`` mean the same); read lists with ``as_list``."""
    if isinstance(value, list):
        return plain(value[0]) if len(value) == 1 else [plain(item) for item in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k not in _LINE_KEYS}
    return value


def policy_document(conf: dict[str, Any], key: str = "policy") -> dict[str, Any] | None:
    """An IAM/resource policy attribute as a plain dict: the gate hands literal JSON text over parsed (checkov
    then wraps every value in a list), a document may also arrive as the string; an expression (a data source's
    ``.json``) or text that is not JSON gives None."""
    text = scalar(conf, key)
    if isinstance(text, dict):
        return plain(text)
    if isinstance(text, str):
        try:
            document = json.loads(text)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None
    return None


def metadata_maps(conf: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A Kubernetes resource's ``metadata.annotations`` and ``metadata.labels`` (each: a dict, empty when absent,
    None when it is one expression)."""
    metadata = block(conf, "metadata") or {}
    return mapping(metadata, "annotations"), mapping(metadata, "labels")
