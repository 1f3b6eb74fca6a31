"""Helpers to read synthesized Terraform JSON in tests."""

from __future__ import annotations

import re


def resources(stack: dict, resource_type: str) -> dict[str, dict]:
    """The resources of one type, by their Terraform name."""
    return stack.get("resource", {}).get(resource_type, {})


def by_path(stack: dict, resource_type: str) -> dict[str, dict]:
    """The resources of one type, by construct path below the stack (e.g. ``pool-cpu/node-group``)."""
    found = {}
    for body in resources(stack, resource_type).values():
        path = body["//"]["metadata"]["path"]
        found[path.split("/", 1)[1]] = body
    return found


def one(stack: dict, resource_type: str) -> dict:
    items = list(resources(stack, resource_type).values())
    assert len(items) == 1, f"expected one {resource_type}, found {len(items)}"
    return items[0]


def reference_to(resource_type: str, attribute: str) -> re.Pattern:
    """A pattern matching a Terraform reference to ``<resource_type>.<any name>.<attribute>``."""
    return re.compile(rf"^\$\{{{re.escape(resource_type)}\.[\w-]+\.{re.escape(attribute)}\}}$")
