"""Evaluate an IAM policy document against one request, the way AWS does, for the operators the platform uses.

No published package evaluates a request (policyuniverse, py-iam-expand and parliament parse, expand or lint),
so this is a small evaluator for tests. It follows the documented evaluation logic of a single policy:
- a statement applies when its principal, action and resource match and all its conditions hold;
- an explicit Deny in any applicable statement wins; otherwise an applicable Allow allows; otherwise the request
  is implicitly denied.
Matching: actions case-insensitively with ``*``/``?`` wildcards; resources with wildcards (``*`` also spans
``/`` and ``:``); ``NotAction``/``NotResource`` invert the match. Conditions: every operator of a block must hold
(AND), every key of an operator must hold (AND), any value of a key may match (OR); ``...IfExists`` holds when the
key is absent; a negated operator holds when the key is absent; an operator not listed here raises rather than
guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

ALLOW, DENY, IMPLICIT_DENY = "Allow", "Deny", "ImplicitDeny"


@dataclass(frozen=True)
class Request:
    """One request: who (an IAM role ARN, or None for an anonymous client), what, on what, and its context keys
    (``aws:SecureTransport``, ``elasticfilesystem:AccessedViaMountTarget``, ...) as strings."""

    action: str
    resource: str
    principal: str | None = None
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)


@cache
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern:
    translated = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{translated}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcard matching: ``*`` is any run of characters (``/`` and ``:`` included), ``?`` one character."""
    return bool(_wildcard(pattern, ignore_case).match(value))


def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def action_matches(patterns: str | Sequence[str], action: str) -> bool:
    return any(wildcard_match(p, action, ignore_case=True) for p in as_list(patterns))


def resource_matches(patterns: str | Sequence[str], resource: str) -> bool:
    return any(wildcard_match(p, resource) for p in as_list(patterns))


def _principal_matches(principal: Any, request_principal: str | None) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        raise ValueError(f"unsupported Principal {principal!r}")
    for kind, values in principal.items():
        if kind != "AWS":
            continue  # service principals never send NFS or API requests of a role
        for value in as_list(values):
            if value == "*" or (request_principal is not None and value == request_principal):
                return True
    return False


def _strings(values: Any) -> list[str]:
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in as_list(values)]


def _string_test(operator: str):
    tests = {
        "StringEquals": lambda policy, actual: policy == actual,
        "StringLike": lambda policy, actual: wildcard_match(policy, actual),
        "StringEqualsIgnoreCase": lambda policy, actual: policy.lower() == actual.lower(),
        "ArnEquals": lambda policy, actual: policy == actual,
        "ArnLike": lambda policy, actual: wildcard_match(policy, actual),
        "Bool": lambda policy, actual: policy.lower() == actual.lower(),
    }
    return tests.get(operator)


def condition_holds(operator: str, key: str, policy_values: Any, context: Mapping[str, Any]) -> bool:
    """One operator on one key of the request context."""
    present = key in context
    if operator == "Null":
        # "true": the key must be absent; "false": it must be present.
        return any((value == "true") != present for value in _strings(policy_values))
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    negated = base in ("StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike",
                       "StringNotEqualsIgnoreCase")
    positive = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals",
                "ArnNotLike": "ArnLike", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase"}.get(base, base)
    test = _string_test(positive)
    if test is None:
        raise ValueError(f"condition operator {operator} is not supported by this evaluator")
    if not present:
        return if_exists or negated
    actual_values = _strings(context[key])
    matched = any(test(policy, actual) for policy in _strings(policy_values) for actual in actual_values)
    return not matched if negated else matched


def _conditions_hold(block: Mapping[str, Mapping[str, Any]] | None, context: Mapping[str, Any]) -> bool:
    return all(condition_holds(operator, key, values, context)
               for operator, keys in (block or {}).items() for key, values in keys.items())


def statement_applies(statement: Mapping[str, Any], request: Request, *, resource_policy: bool) -> bool:
    if resource_policy and not _principal_matches(statement.get("Principal"), request.principal):
        return False
    if "Action" in statement:
        if not action_matches(statement["Action"], request.action):
            return False
    elif action_matches(statement["NotAction"], request.action):
        return False
    if "Resource" in statement:
        if not resource_matches(statement["Resource"], request.resource):
            return False
    elif "NotResource" in statement and resource_matches(statement["NotResource"], request.resource):
        return False
    return _conditions_hold(statement.get("Condition"), request.context)


def evaluate(policy: Mapping[str, Any] | Iterable[Mapping[str, Any]], request: Request, *,
             resource_policy: bool = True) -> str:
    """``Allow``, ``Deny`` (an explicit Deny applied) or ``ImplicitDeny`` (nothing allowed it)."""
    statements = policy["Statement"] if isinstance(policy, Mapping) else list(policy)
    if isinstance(statements, Mapping):
        statements = [statements]
    applicable = [s for s in statements if statement_applies(s, request, resource_policy=resource_policy)]
    if any(s["Effect"] == "Deny" for s in applicable):
        return DENY
    if any(s["Effect"] == "Allow" for s in applicable):
        return ALLOW
    return IMPLICIT_DENY
