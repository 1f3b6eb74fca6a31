"""Container images: the ones this repository builds (``images/<repository>/``, one ECR repository each, pushed
under one immutable version) and the upstream ones the platform runs or builds on, each listed once in a data file.

``image_problem`` says whether a reference is one of them; the environment models, the image workflow's matrix and
the tests of the synthesized stacks all ask it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

DATA_DIR = Path(__file__).with_name("data")
PLATFORM_IMAGES_FILE = DATA_DIR / "platform_images.yaml"
UPSTREAM_IMAGES_FILE = DATA_DIR / "upstream_images.yaml"
#: Where the build contexts live, relative to the repository root.
BUILD_CONTEXTS = "images"


@dataclass(frozen=True)
class PlatformImage:
    """An image built from ``images/<repository>/`` and pushed to the ECR repository of the same name."""

    repository: str
    #: The only tag the workflow pushes for it (tags are immutable).
    version: str

    @property
    def build_context(self) -> str:
        return f"{BUILD_CONTEXTS}/{self.repository}"


@cache
def platform_images() -> dict[str, PlatformImage]:
    """The images this repository builds, by ECR repository name, in file order."""
    with PLATFORM_IMAGES_FILE.open(encoding="utf-8") as handle:
        entries = yaml.safe_load(handle)
    return {name: PlatformImage(repository=name, version=str(entry["version"])) for name, entry in entries.items()}


@cache
def upstream_images() -> dict[str, tuple[str, ...]]:
    """Upstream repository -> the exact tags the platform may run or build on."""
    with UPSTREAM_IMAGES_FILE.open(encoding="utf-8") as handle:
        entries = yaml.safe_load(handle)["images"]
    return {name: tuple(str(tag) for tag in entry["tags"]) for name, entry in entries.items()}


def ecr_registry(account_id: str, region: str) -> str:
    """The ECR registry of an account and region (the environment's: its delivery stack holds the repositories)."""
    return f"{account_id}.dkr.ecr.{region}.amazonaws.com"


def registry(account_id: str, region: str) -> str:
    """The account's private ECR registry host (``ecr_registry``)."""
    return ecr_registry(account_id, region)


def inference_image(engine: str) -> str:
    """The platform image an inference engine (vllm, triton, tgi) runs."""
    return f"inference/{engine}"


def platform_image_reference(registry: str, repository: str, tag: str | None = None) -> str:
    """``<registry>/<repository>:<tag>``, the tag defaulting to the image's version."""
    return f"{registry}/{repository}:{tag or platform_images()[repository].version}"


def split_reference(reference: str) -> tuple[str, str | None]:
    """``(repository, tag)`` of an image reference; the tag is None when the reference has none (or a digest)."""
    name, _, last = reference.rpartition("/")
    if ":" in last and "@" not in last:
        image, tag = last.split(":", 1)
        return (f"{name}/{image}" if name else image), tag
    return reference, None


def platform_tag_problem(repository: str, tag: str) -> str | None:
    """Why ``repository:tag`` is not an image the workflow pushes (None when it is)."""
    built = platform_images()
    if repository not in built:
        return (f"{repository!r} has no build context under {BUILD_CONTEXTS}/; images built here: "
                f"{', '.join(built)}")
    if tag != built[repository].version:
        return (f"{tag!r} is not the tag images.yml pushes for {repository}; allowed: {built[repository].version!r} "
                f"(version in platform_config/data/{PLATFORM_IMAGES_FILE.name}; tags are immutable)")
    return None


def image_problem(reference: str, *, registry: str) -> str | None:
    """None when ``reference`` is this platform's image in ``registry`` at the version the workflow pushes, or an
    upstream image at a listed tag; otherwise what is wrong and what is allowed."""
    repository, tag = split_reference(reference)
    if repository.startswith(f"{registry}/"):
        return platform_tag_problem(repository.removeprefix(f"{registry}/"), tag or "")
    tags = upstream_images().get(repository)
    if tags is None:
        return (f"{reference} is neither built here ({registry}/<one of {', '.join(platform_images())}>) nor "
                f"listed in platform_config/data/{UPSTREAM_IMAGES_FILE.name}")
    if tag not in tags:
        return (f"{reference}: tag {tag!r} of {repository} is not listed in "
                f"platform_config/data/{UPSTREAM_IMAGES_FILE.name}; listed: {', '.join(tags)}")
    return None


#: The Secrets Manager secret (in each account, created by the delivery layer) holding the GitHub App that writes
#: new image tags into the GitOps repository: JSON ``{"client_id": ..., "private_key": ...}``.
GITOPS_APP_SECRET = "mlops-platform/gitops-github-app"
#: The Helm values key (in the GitOps repository's tags file) that maps a repository to the tag its workloads run.
IMAGE_TAGS_KEY = "imageTags"
_TAG_TEMPLATE = re.compile(r'\{\{ dig "(?P<repository>[^"]+)" "(?P<default>[^"]+)" \(\.Values\.imageTags \| default '
                           r'dict\) \}\}')


def tag_template(repository: str, default_tag: str) -> str:
    """A Helm template of an image tag: the tags file's entry for ``repository``, else ``default_tag``."""
    return f'{{{{ dig "{repository}" "{default_tag}" (.Values.{IMAGE_TAGS_KEY} | default dict) }}}}'


def with_default_tags(text: str) -> str:
    """A template as it renders before the tags file names any tag (each image at its default tag)."""
    return _TAG_TEMPLATE.sub(lambda match: match["default"], text)
