"""Resolve the digest of every upstream image tag (platform_config/data/upstream_images.yaml) from its registry and
write the image lock (platform_config/data/image_lock.yaml): ``make pin-images``.

The build contexts under images/ start FROM the same pins: their FROM lines are rewritten to the new digests
(a changed base is a changed build context: bump the image's version in platform_images.yaml).

It speaks the registry HTTP API (OCI distribution) with the standard library: a HEAD of the tag's manifest, with an
anonymous bearer token where the registry asks for one, and the digest from ``Docker-Content-Digest`` (for a
multi-platform image, the digest of its index, so every node architecture pulls the same pin). Every tag is
resolved before anything is written: one registry that cannot be reached leaves the lock as it was.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

from platform_config.images import (
    BUILD_CONTEXTS,
    DOCKER_HUB,
    IMAGE_LOCK_FILE,
    UPSTREAM_IMAGES_FILE,
    LockEntry,
    lock_key,
    parse_reference,
    upstream_images,
    upstream_location,
)

#: Manifest media types asked for: an index (multi-platform) first, then a single-platform manifest.
ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
#: The API host of a registry where it differs from the host image references name.
API_HOSTS = {DOCKER_HUB: "registry-1.docker.io"}
TIMEOUT_SECONDS = 20
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')

Opener = Callable[..., object]


class RegistryError(Exception):
    """A registry could not be reached or would not name a digest: one line, naming the registry."""


def _request(opener: Opener, request: urllib.request.Request, host: str):
    try:
        return opener(request, timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise RegistryError(f"cannot reach {host}: {reason}") from error


def _token(opener: Opener, challenge: str, api_host: str, path: str) -> str:
    """An anonymous pull token from the realm a ``WWW-Authenticate: Bearer ...`` challenge names."""
    if not challenge.lower().startswith("bearer "):
        raise RegistryError(f"cannot reach {api_host}: it asks for {challenge.split(' ')[0] or 'unknown'} "
                            "authentication, not an anonymous bearer token")
    fields = dict(_CHALLENGE.findall(challenge))
    query = {"scope": fields.get("scope") or f"repository:{path}:pull"}
    if "service" in fields:
        query["service"] = fields["service"]
    realm = fields.get("realm", "")
    token_host = urllib.parse.urlparse(realm).netloc or api_host
    try:
        with _request(opener, urllib.request.Request(f"{realm}?{urllib.parse.urlencode(query)}"),
                      token_host) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        raise RegistryError(f"cannot reach {token_host}: HTTP {error.code} {error.reason} for an anonymous "
                            "token") from error
    token = body.get("token") or body.get("access_token")
    if not token:
        raise RegistryError(f"cannot reach {api_host}: its token service ({realm}) returned no token")
    return token


def resolve_digest(repository: str, tag: str, *, opener: Opener | None = None) -> str:
    """The ``sha256:`` digest ``repository:tag`` points at now, asked of its registry (through ``opener``, default
    ``urllib.request.urlopen``)."""
    opener = opener or urllib.request.urlopen
    host, path = upstream_location(repository)
    api_host = API_HOSTS.get(host, host)
    url = f"https://{api_host}/v2/{path}/manifests/{tag}"
    headers = {"Accept": ACCEPT}
    for attempt in range(2):
        request = urllib.request.Request(url, headers=headers, method="GET")
        try:
            with _request(opener, request, api_host) as response:
                digest = response.headers.get("Docker-Content-Digest")
                body = response.read()
        except urllib.error.HTTPError as error:
            if error.code == 401 and attempt == 0 and error.headers.get("WWW-Authenticate"):
                headers["Authorization"] = f"Bearer {_token(opener, error.headers['WWW-Authenticate'], api_host, path)}"
                continue
            raise RegistryError(f"cannot resolve {repository}:{tag} at {api_host}: HTTP {error.code} "
                                f"{error.reason}") from error
        # A registry that omits the header still serves the manifest: its digest is the hash of those bytes.
        digest = digest or f"sha256:{hashlib.sha256(body).hexdigest()}"
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise RegistryError(f"cannot resolve {repository}:{tag} at {api_host}: digest {digest!r}")
        return digest
    raise RegistryError(f"cannot resolve {repository}:{tag} at {api_host}: still unauthorized with a token")


def resolve_lock(*, opener: Opener | None = None, today: datetime.date | None = None) -> dict[str, LockEntry]:
    """A lock entry with the current digest for every listed upstream tag; raises ``RegistryError`` on the first
    registry that fails (nothing is returned half-resolved)."""
    day = (today or datetime.date.today()).isoformat()
    lock = {}
    for repository, tags in upstream_images().items():
        for tag in tags:
            host = upstream_location(repository)[0]
            lock[lock_key(repository, tag)] = LockEntry(
                digest=resolve_digest(repository, tag, opener=opener),
                source=f"resolved from {API_HOSTS.get(host, host)} by make pin-images on {day}")
    return lock


LOCK_HEADER = f"""\
# The image lock: each upstream image tag (platform_config/data/{UPSTREAM_IMAGES_FILE.name}) -> the digest the
# synthesized stacks pin it by, or `unresolved: <why>` where no digest could be checked. Written by
# `make pin-images` (tools/pin_images), which asks each registry what the tag points at now; edit it by hand only
# to record why a tag is unresolved. A digest is what the nodes pull, whatever the tag points at later.
"""


def lock_text(lock: dict[str, LockEntry]) -> str:
    entries = {key: {field: value for field, value in vars(entry).items() if value is not None}
               for key, entry in lock.items()}
    return LOCK_HEADER + yaml.safe_dump({"images": entries}, sort_keys=False, width=100)


def write_lock(lock: dict[str, LockEntry], path: Path = IMAGE_LOCK_FILE) -> None:
    """Replace the lock file at once (a temporary file renamed over it): readers never see half a lock."""
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.",
                                     delete=False) as handle:
        handle.write(lock_text(lock))
    os.replace(handle.name, path)


_FROM = re.compile(r"^(?P<head>FROM\s+)(?P<image>\S+)", re.IGNORECASE | re.MULTILINE)


def pinned_dockerfile(text: str, lock: dict[str, LockEntry]) -> str:
    """A Dockerfile with each FROM of a locked upstream tag at the lock's digest (or the tag alone where the lock
    has none)."""
    def pin(match: re.Match) -> str:
        name, tag, _ = parse_reference(match["image"])
        entry = lock.get(lock_key(name, tag or ""))
        if entry is None:
            return match[0]
        return f"{match['head']}{name}:{tag}" + (f"@{entry.digest}" if entry.digest else "")
    return _FROM.sub(pin, text)


def pin_dockerfiles(lock: dict[str, LockEntry], root: Path) -> list[Path]:
    """Rewrite the FROM lines of every Dockerfile under ``root/images``; returns the files that changed."""
    changed = []
    for dockerfile in sorted((root / BUILD_CONTEXTS).rglob("Dockerfile")):
        text = dockerfile.read_text(encoding="utf-8")
        if (pinned := pinned_dockerfile(text, lock)) != text:
            dockerfile.write_text(pinned, encoding="utf-8")
            changed.append(dockerfile)
    return changed
