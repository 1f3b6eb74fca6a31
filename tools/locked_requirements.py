"""Print pip requirement lines, with their hashes, for some packages of ``Pipfile.lock``.

A job that needs only a few of the project's packages (the deploy check on the in-VPC runner needs pydantic and
PyYAML, not cdktf) installs exactly the locked versions with ``pip install --no-deps --require-hashes -r``; the
lock stays the one place where versions are written. Standard library only: it runs before anything is installed.

    python3 -m tools.locked_requirements pydantic pydantic-core pyyaml > requirements.txt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

LOCK_FILE = Path(__file__).resolve().parents[1] / "Pipfile.lock"


def locked_requirements(names: list[str], lock_file: Path = LOCK_FILE) -> list[str]:
    """One ``name==version --hash=...`` line per name, from the lock's default packages; a name the lock's default
    packages do not hold raises ``KeyError`` naming it."""
    locked = json.loads(lock_file.read_text())["default"]
    lines = []
    for name in names:
        key = name.lower().replace("_", "-")
        if key not in locked:
            raise KeyError(f"{name} is not among the default packages of {lock_file.name}")
        entry = locked[key]
        hashes = " ".join(f"--hash={digest}" for digest in entry["hashes"])
        lines.append(f"{key}{entry['version']} {hashes}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="+")
    args = parser.parse_args(argv)
    try:
        print("\n".join(locked_requirements(args.packages)))
    except KeyError as error:
        print(error.args[0], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
