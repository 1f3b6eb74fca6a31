"""Reading and writing an environment's tags file (``<gitops.path>/image-tags.yaml``): ``imageTags`` maps an ECR
repository of the platform to the tag its workloads run."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from platform_config.images import IMAGE_TAGS_KEY, platform_images

#: An image tag as Docker and ECR accept it.
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
HEADER = ("# Image tags of the platform's workloads in this environment (ECR repository: tag). Written by the image\n"
          "# workflow of the platform repository; Argo CD reads it as a Helm value file.\n")


class TagsFileError(ValueError):
    """The tags file or the requested change is not valid; the message names the file and what is allowed."""


def _known() -> str:
    return ", ".join(platform_images())


def read_tags(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    tags = data.get(IMAGE_TAGS_KEY, {}) if isinstance(data, dict) else None
    if not isinstance(tags, dict) or set(data) - {IMAGE_TAGS_KEY}:
        raise TagsFileError(f"{path}: expected only a map '{IMAGE_TAGS_KEY}: {{<repository>: <tag>}}'")
    unknown = sorted(set(tags) - set(platform_images()))
    if unknown:
        raise TagsFileError(f"{path}: {IMAGE_TAGS_KEY}: unknown repositories {', '.join(unknown)} "
                            f"(allowed: {_known()})")
    return {str(k): str(v) for k, v in tags.items()}


def set_tags(path: Path, wanted: Mapping[str, str]) -> list[str]:
    """Write each image's tag of ``wanted`` into the file (created if missing, other entries kept); returns the
    images whose tag changed."""
    bad = sorted(tag for tag in wanted.values() if not _TAG.match(tag))
    if bad:
        raise TagsFileError(f"tag {bad[0]!r} is not an image tag (letters, digits, '_', '.', '-'; at most 128)")
    unknown = sorted(set(wanted) - set(platform_images()))
    if unknown:
        raise TagsFileError(f"images {', '.join(unknown)} are not the platform's (allowed: {_known()})")
    tags = read_tags(path)
    changed = sorted(image for image, tag in wanted.items() if tags.get(image) != tag)
    tags.update(wanted)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + yaml.safe_dump({IMAGE_TAGS_KEY: dict(sorted(tags.items()))}, default_flow_style=False),
                    encoding="utf-8")
    return changed


def matrix_tags(matrix_json: str) -> dict[str, str]:
    """Image -> tag of the image workflow's matrix (``tools.synth_diff image-matrix``: ``{"include": [{"image",
    "tag"}]}``)."""
    try:
        entries = json.loads(matrix_json)["include"]
        return {entry["image"]: entry["tag"] for entry in entries}
    except (ValueError, KeyError, TypeError) as error:
        raise TagsFileError(f"--matrix: expected the image matrix JSON {{\"include\": [{{\"image\": ..., \"tag\": "
                            f"...}}]}} ({error})") from None
