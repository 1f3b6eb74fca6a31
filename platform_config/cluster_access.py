"""What the EKS cluster access policies allow, and whether a set of them lets a principal read Secrets.

The rules of each access policy are data (``data/eks_access_policies.yaml``, with their source); this module
evaluates them the way the Kubernetes RBAC authorizer does (a request is allowed when one rule matches its API
group, resource and verb; ``*`` matches anything).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

ACCESS_POLICIES_FILE = Path(__file__).with_name("data") / "eks_access_policies.yaml"
ACCESS_POLICY_ARN_PREFIX = "arn:aws:eks::aws:cluster-access-policy/"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rule(_Frozen):
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]

    def allows(self, *, api_group: str, resource: str, verb: str) -> bool:
        return (("*" in self.api_groups or api_group in self.api_groups)
                and ("*" in self.resources or resource in self.resources)
                and ("*" in self.verbs or verb in self.verbs))


class AccessPolicy(_Frozen):
    rules: tuple[Rule, ...]


class SecretReadPath(_Frozen):
    """One request that, when allowed, gives its principal a Secret's value."""

    api_group: str
    resource: str
    verbs: tuple[str, ...]
    why: str


class AccessPolicyTable(_Frozen):
    policies: dict[str, AccessPolicy]
    secret_read_paths: tuple[SecretReadPath, ...]


@cache
def access_policy_table() -> AccessPolicyTable:
    return AccessPolicyTable.model_validate(yaml.safe_load(ACCESS_POLICIES_FILE.read_text()))


def access_policy_arn(name: str) -> str:
    """The ARN of the access policy ``name``; refuses a policy the table does not describe."""
    if name not in access_policy_table().policies:
        raise ValueError(f"access policy {name!r} is not in {ACCESS_POLICIES_FILE.name} "
                         f"(known: {', '.join(sorted(access_policy_table().policies))})")
    return ACCESS_POLICY_ARN_PREFIX + name


def policy_name(arn: str) -> str:
    """``AmazonEKSViewPolicy`` from its ARN (any partition)."""
    return arn.rsplit("/", 1)[1]


def secret_read_paths(policy_names: Iterable[str]) -> list[str]:
    """The ways the union of these access policies lets a principal read a Secret, as
    ``<policy>: <verb> <resource> (<why>)``; empty when none does.

    A policy the table does not know is reported too: what it allows cannot be evaluated.
    """
    table = access_policy_table()
    found = []
    for name in policy_names:
        policy = table.policies.get(name)
        if policy is None:
            found.append(f"{name}: not in {ACCESS_POLICIES_FILE.name}, its rules are unknown")
            continue
        for path in table.secret_read_paths:
            for verb in path.verbs:
                if any(rule.allows(api_group=path.api_group, resource=path.resource, verb=verb)
                       for rule in policy.rules):
                    found.append(f"{name}: {verb} {path.resource} ({path.why})")
    return found
