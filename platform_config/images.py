"""Container images: the ones this repository builds (``images/<repository>/``, one ECR repository each, pushed
under one immutable version) and the upstream ones the platform runs or builds on, each listed once in a data file.

Upstream images reach the nodes through the account's ECR pull-through cache (``data/pull_through_cache.yaml``),
pinned by the digest the image lock (``data/image_lock.yaml``, written by ``make pin-images``) records for their
tag; a lock entry without a digest says why it is unresolved, and the reference then carries the tag alone.

``image_problem`` says whether a reference is one of them; the environment models, the image workflow's matrix and
the tests of the synthesized stacks all ask it. ``pin_problem`` says whether an upstream reference is pinned.
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
PULL_THROUGH_CACHE_FILE = DATA_DIR / "pull_through_cache.yaml"
IMAGE_LOCK_FILE = DATA_DIR / "image_lock.yaml"
#: Where a reference without a registry host is pulled from, and where Docker Hub keeps its official images.
DOCKER_HUB = "docker.io"
DOCKER_HUB_OFFICIAL = "library"
#: The Helm values key under which a chart takes its image as ``{repository, tag}`` (upstream_images.yaml ``release``).
CHART_IMAGE_KEY = "image"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
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
def _upstream_entries() -> dict[str, dict]:
    with UPSTREAM_IMAGES_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)["images"]


def upstream_images() -> dict[str, tuple[str, ...]]:
    """Upstream repository -> the exact tags the platform may run or build on."""
    return {name: tuple(str(tag) for tag in entry["tags"]) for name, entry in _upstream_entries().items()}


def upstream_tag(repository: str) -> str:
    """The one tag of an upstream repository (the synthesized stacks run that one)."""
    tags = upstream_images()[repository]
    if len(tags) != 1:
        raise ValueError(f"{repository} lists {len(tags)} tags in platform_config/data/{UPSTREAM_IMAGES_FILE.name}; "
                         "name the one to run")
    return tags[0]


@dataclass(frozen=True)
class PullThroughRule:
    """An ECR pull-through cache rule: images of ``host`` are cached under ``<registry>/<prefix>/``."""

    host: str
    prefix: str
    upstream_url: str
    #: The Secrets Manager secret (``ecr-pullthroughcache/...``) ECR authenticates upstream with, if it must.
    credential: str | None = None


@cache
def pull_through_rules() -> dict[str, PullThroughRule]:
    """Upstream registry host -> its pull-through cache rule."""
    with PULL_THROUGH_CACHE_FILE.open(encoding="utf-8") as handle:
        entries = yaml.safe_load(handle)["registries"]
    return {host: PullThroughRule(host=host, **entry) for host, entry in entries.items()}


def upstream_location(repository: str) -> tuple[str, str]:
    """``(registry host, path in that registry)`` of an upstream repository as the platform writes it
    (``python`` -> ``(docker.io, library/python)``; ``ghcr.io/optuna/optuna-dashboard`` -> ``(ghcr.io, ...)``)."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = DOCKER_HUB, repository
    if host == DOCKER_HUB and "/" not in path:
        path = f"{DOCKER_HUB_OFFICIAL}/{path}"
    return host, path


@dataclass(frozen=True)
class LockEntry:
    """What the image lock records for one upstream ``repository:tag``: its digest, or why it has none."""

    digest: str | None = None
    unresolved: str | None = None
    #: Where the digest came from (the registry and the day it was resolved, or where it was read).
    source: str | None = None


def lock_key(repository: str, tag: str) -> str:
    return f"{repository}:{tag}"


def read_image_lock(path: Path = IMAGE_LOCK_FILE) -> dict[str, LockEntry]:
    """The image lock: ``repository:tag`` -> its entry. Each entry has exactly one of a digest and a reason."""
    with path.open(encoding="utf-8") as handle:
        entries = (yaml.safe_load(handle) or {}).get("images") or {}
    lock = {}
    for key, entry in entries.items():
        item = LockEntry(**entry)
        if (item.digest is None) == (not item.unresolved):
            raise ValueError(f"{path.name}: {key}: give either digest or unresolved (why there is no digest)")
        if item.digest is not None and not _DIGEST.fullmatch(item.digest):
            raise ValueError(f"{path.name}: {key}: digest {item.digest!r} is not sha256:<64 hex digits>")
        lock[key] = item
    return lock


@cache
def image_lock() -> dict[str, LockEntry]:
    """The committed image lock (``data/image_lock.yaml``)."""
    return read_image_lock()


def _mirrored(repository: str, registry: str) -> tuple[str, str]:
    """``(<registry>/<prefix>/<path>, <tag>[@<digest>])`` of an upstream repository at its one tag."""
    host, path = upstream_location(repository)
    rules = pull_through_rules()
    if host not in rules:
        raise ValueError(f"{repository}: {host} has no pull-through cache rule in platform_config/data/"
                         f"{PULL_THROUGH_CACHE_FILE.name} (rules for: {', '.join(rules)})")
    tag = upstream_tag(repository)
    entry = image_lock().get(lock_key(repository, tag))
    if entry is None:
        raise ValueError(f"{repository}:{tag} has no entry in platform_config/data/{IMAGE_LOCK_FILE.name}: run "
                         "make pin-images")
    return f"{registry}/{rules[host].prefix}/{path}", f"{tag}@{entry.digest}" if entry.digest else tag


def mirrored_image(repository: str, *, registry: str) -> str:
    """An upstream image as the nodes pull it: through the pull-through cache of the account's ECR ``registry``,
    at its tag and, where the lock has one, its digest."""
    name, tag = _mirrored(repository, registry)
    return f"{name}:{tag}"


def chart_image_values(release: str, *, registry: str) -> dict[str, dict[str, str]]:
    """The ``image`` values of a Helm release whose chart runs an upstream image listed for it (``release`` in
    upstream_images.yaml): repository through the pull-through cache, tag with the locked digest. Empty for
    other releases. Charts write ``<repository>:<tag>``, so a ``<tag>@<digest>`` tag pins the digest."""
    listed = [name for name, entry in _upstream_entries().items() if entry.get("release") == release]
    if not listed:
        return {}
    [repository] = listed
    name, tag = _mirrored(repository, registry)
    return {CHART_IMAGE_KEY: {"repository": name, "tag": tag}}


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


def parse_reference(reference: str) -> tuple[str, str | None, str | None]:
    """``(name, tag, digest)`` of an image reference; tag and digest are None where it has none."""
    name, _, digest = reference.partition("@")
    head, _, last = name.rpartition("/")
    tag = None
    if ":" in last:
        last, tag = last.split(":", 1)
    return (f"{head}/{last}" if head else last), tag, (digest or None)


def cached_upstream(reference: str, *, registry: str) -> str | None:
    """The upstream repository (as upstream_images.yaml names it) of a reference into the pull-through cache of
    ``registry``, or None when the reference is not under a cache prefix."""
    name = parse_reference(reference)[0]
    for host, rule in pull_through_rules().items():
        prefix = f"{registry}/{rule.prefix}/"
        if name.startswith(prefix):
            path = name.removeprefix(prefix)
            if host != DOCKER_HUB:
                return f"{host}/{path}"
            official, _, image = path.partition("/")
            return image if official == DOCKER_HUB_OFFICIAL and "/" not in image else path
    return None


def platform_repository(reference: str, *, registry: str) -> str | None:
    """The repository of an image built here that ``reference`` names in ``registry`` (None for other images)."""
    if not reference.startswith(f"{registry}/") or cached_upstream(reference, registry=registry) is not None:
        return None
    return parse_reference(reference)[0].removeprefix(f"{registry}/")


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


def upstream_problem(repository: str, tag: str | None, digest: str | None = None) -> str | None:
    """Why ``repository:tag[@digest]`` is not a listed upstream image at a listed tag with the lock's digest."""
    reference = f"{repository}:{tag}" if tag else repository
    tags = upstream_images().get(repository)
    if tags is None:
        return f"{reference} is not listed in platform_config/data/{UPSTREAM_IMAGES_FILE.name}"
    if tag not in tags:
        return (f"{reference}: tag {tag!r} of {repository} is not listed in "
                f"platform_config/data/{UPSTREAM_IMAGES_FILE.name}; listed: {', '.join(tags)}")
    locked = image_lock().get(lock_key(repository, tag))
    if locked is None:
        return f"{reference} has no entry in platform_config/data/{IMAGE_LOCK_FILE.name}: run make pin-images"
    if digest is not None and digest != locked.digest:
        return (f"{reference}@{digest}: the lock records {locked.digest or 'no digest'} for this tag "
                f"(platform_config/data/{IMAGE_LOCK_FILE.name})")
    return None


def image_problem(reference: str, *, registry: str) -> str | None:
    """None when ``reference`` is this platform's image in ``registry`` at the version the workflow pushes, or an
    upstream image at a listed tag pulled through the pull-through cache of ``registry``; otherwise what is wrong
    and what is allowed."""
    name, tag, digest = parse_reference(reference)
    upstream = cached_upstream(reference, registry=registry)
    if upstream is not None:
        return upstream_problem(upstream, tag, digest)
    if name.startswith(f"{registry}/"):
        return platform_tag_problem(name.removeprefix(f"{registry}/"), tag or "")
    if name in upstream_images():
        host = upstream_location(name)[0]
        return (f"{reference} is pulled from {host} directly; reference it through the account's pull-through "
                f"cache ({registry}/<prefix>/..., platform_config/data/{PULL_THROUGH_CACHE_FILE.name})")
    return (f"{reference} is neither built here ({registry}/<one of {', '.join(platform_images())}>) nor "
            f"listed in platform_config/data/{UPSTREAM_IMAGES_FILE.name}")


def pin_problem(reference: str, *, registry: str) -> str | None:
    """None when ``reference`` is pinned: an image built here (its ECR repository's tags are immutable), an image
    with a ``@sha256:`` digest, or an upstream tag whose lock entry says why it has no digest; otherwise why not."""
    if platform_repository(reference, registry=registry) is not None:
        return None
    name, tag, digest = parse_reference(reference)
    if digest is not None and _DIGEST.fullmatch(digest):
        return None
    upstream = cached_upstream(reference, registry=registry) or name
    entry = image_lock().get(lock_key(upstream, tag or ""))
    if entry is not None and entry.digest is None and entry.unresolved:
        return None
    return (f"{reference} has neither a @sha256: digest nor an entry in platform_config/data/{IMAGE_LOCK_FILE.name} "
            "that says why it is unresolved")


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
