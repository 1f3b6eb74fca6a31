"""The container images synthesized stacks run, and the image workflow's matrix: the images this repository builds
that one environment's stacks reference, each with the one tag to push.

Images are found in the ``image`` fields of kubernetes-provider resources and, in Helm values, both in delivered
manifests (``image: <reference>``) and in a chart's image settings (``image: {registry, repository, tag}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from platform_config.images import image_problem, platform_repository, split_reference
from platform_config.report import application_manifests
from tools.synth_diff.pipeline import aws_target, environment_stacks

#: The C parser when PyYAML has it: Helm values of a whole platform are megabytes of YAML.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: Written where a chart setting leaves a part of the image to the chart's defaults (so it is not pinned here).
CHART_DEFAULT = "<chart default>"


def _chart_image(setting: dict[str, Any]) -> str:
    repository = setting.get("repository") or CHART_DEFAULT
    registry = setting.get("registry")
    return f"{registry + '/' if registry else ''}{repository}:{setting.get('tag') or CHART_DEFAULT}"


def _walk(value: Any, where: str, found: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}"
            if key == "image" or str(key).endswith("Image"):
                if isinstance(item, str):
                    found.append((here, item))
                    continue
                if isinstance(item, dict) and ({"repository", "tag"} & set(item)):
                    found.append((here, _chart_image(item)))
                    continue
            _walk(item, here, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{where}[{index}]", found)


def container_images(stack: dict) -> list[tuple[str, str]]:
    """``(where, image reference)`` for every container image a synthesized stack names."""
    found: list[tuple[str, str]] = []
    for resource_type, items in (stack.get("resource") or {}).items():
        for name, body in items.items():
            if resource_type == "helm_release":
                for index, text in enumerate(body.get("values") or []):
                    values = yaml.load(text, Loader=_LOADER)
                    where = f"helm_release.{name}.values[{index}]"
                    _walk(values, where, found)
                    # What an Argo CD Application among delivered manifests deploys, at its default image tags.
                    for item in (values or {}).get("resources") or [] if isinstance(values, dict) else []:
                        if isinstance(item, dict) and item.get("kind") == "Application":
                            _walk(application_manifests(item), f"{where}.Application {item['metadata']['name']}",
                                  found)
            elif resource_type.startswith("kubernetes_"):
                _walk(body, f"{resource_type}.{name}", found)
    return found


def image_matrix(outdir: Path, environment: str, environments: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """The images this repository builds that ``environment``'s stacks run, each with its tag: what the image
    workflow builds and pushes to that environment's registry. A reference the workflow could not push (another
    tag, or no build context) raises ``ValueError``."""
    registry = aws_target(outdir, environment, environments)["registry"]
    wanted: set[tuple[str, str]] = set()
    for stack in environment_stacks(outdir, environment, environments).values():
        for where, reference in container_images(stack):
            if platform_repository(reference, registry=registry) is None:
                continue
            problem = image_problem(reference, registry=registry)
            if problem:
                raise ValueError(f"{where}: {problem}")
            repository, tag = split_reference(reference.removeprefix(f"{registry}/"))
            wanted.add((repository, tag or ""))
    return {"include": [{"image": repository, "tag": tag} for repository, tag in sorted(wanted)]}
