"""``python -m tools.pin_images [--lock FILE]``: resolve every upstream image tag's digest and write the lock.

The FROM lines of the build contexts under images/ follow the lock (they are listed when they change: bump those
images' versions in platform_config/data/platform_images.yaml).

Exit 0 with the lock written; exit 1 with one line (``cannot reach <registry>: <reason>; lock unchanged``) when a
registry cannot be reached or will not name a digest, the lock left as it was.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from platform_config.images import IMAGE_LOCK_FILE
from tools.pin_images import RegistryError, pin_dockerfiles, resolve_lock, write_lock

REPO_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.pin_images", description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, default=IMAGE_LOCK_FILE, help="the lock file to write")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="the checkout whose images/ to pin")
    args = parser.parse_args(argv)
    try:
        lock = resolve_lock()
    except RegistryError as error:
        print(f"{error}; lock unchanged", file=sys.stderr)
        return 1
    write_lock(lock, args.lock)
    print(f"{args.lock}: {len(lock)} digests")
    for dockerfile in pin_dockerfiles(lock, args.root):
        print(f"{dockerfile}: base image pinned anew; bump its version in platform_images.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
