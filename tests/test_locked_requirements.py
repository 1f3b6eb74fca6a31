"""``tools.locked_requirements``: pip lines with hashes for some packages of Pipfile.lock, the one place of versions."""

from __future__ import annotations

import json

import pytest

from tools.locked_requirements import LOCK_FILE, locked_requirements, main


def test_each_line_pins_the_locked_version_with_every_locked_hash():
    locked = json.loads(LOCK_FILE.read_text())["default"]
    [line] = locked_requirements(["PyYAML"])
    requirement, *hashes = line.split()
    assert requirement == f"pyyaml{locked['pyyaml']['version']}"
    assert hashes == [f"--hash={digest}" for digest in locked["pyyaml"]["hashes"]]


def test_a_package_the_lock_does_not_hold_is_refused_by_name(capsys):
    with pytest.raises(KeyError, match="no-such-package"):
        locked_requirements(["no-such-package"])
    assert main(["pydantic", "no-such-package"]) == 2
    assert "no-such-package is not among the default packages" in capsys.readouterr().err
