"""Roles GitHub Actions assumes through OIDC trust exactly the tokens they were made for.

The gate resolves a ``Federated`` principal that references the stack's OIDC provider to the provider's ARN
(``arn:aws:iam::<account>:oidc-provider/token.actions.githubusercontent.com``), so the trust is checked whatever
way it names the provider. Each role says what it is for in its ``github-actions-role`` tag (modules/delivery):

- every role: ``aud`` is ``sts.amazonaws.com`` (StringEquals) and ``sub`` is matched with StringEquals against
  ``repo:<owner>/<name>:<subject>`` values without wildcards;
- ``deploy``: the only subject is ``environment:<its github-environment tag>``, so the GitHub environment's
  protection rules (required reviewers, main as the only deployment branch) decide who deploys; the reason of the
  AdministratorAccess skip in policies/skips.yaml rests on this;
- ``image-push``: the only subject is ``ref:refs/heads/main``;
- ``plan`` and ``gitops-pull-request``: any exact subjects (read-only, or limited to opening pull requests).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories
from plat_common import NotApplicable, PlatformCheck, as_list, mapping, policy_document

GITHUB_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
ROLE_KIND_TAG = "github-actions-role"
ENVIRONMENT_TAG = "github-environment"
MAIN_BRANCH = "ref:refs/heads/main"
#: The kinds of role modules/delivery makes (its GithubRole values); a new kind is added here with its rule.
ROLE_KINDS = ("plan", "deploy", "image-push", "gitops-pull-request")
_SUBJECT = re.compile(r"^repo:[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+:(?P<subject>.+)$")


def _is_github_statement(statement: dict[str, Any]) -> bool:
    federated = (statement.get("Principal") or {}).get("Federated") if isinstance(statement.get("Principal"),
                                                                                   dict) else None
    names = [str(f) for f in as_list(federated)]
    conditions = statement.get("Condition") or {}
    keys = [str(k) for values in conditions.values() if isinstance(values, dict) for k in values]
    return any(GITHUB_HOST in n for n in names) or any(k.startswith(GITHUB_HOST) for k in keys)


def _claims(condition: dict[str, Any], claim: str) -> dict[str, list[str]]:
    """Operator -> values of ``token.actions.githubusercontent.com:<claim>`` in a statement's Condition."""
    found = {}
    for operator, values in condition.items():
        if isinstance(values, dict) and f"{GITHUB_HOST}:{claim}" in values:
            found[str(operator)] = [str(v) for v in as_list(values[f"{GITHUB_HOST}:{claim}"])]
    return found


class GithubOidcTrustIsExact(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_24",
            name="GitHub OIDC trust: aud sts.amazonaws.com, exact sub; deploy roles only their GitHub environment, "
                 "image push only the main branch",
            why="a wildcard or wrong sub lets any branch, pull request or fork workflow of the repository (or of "
                "any repository) assume the role: the deploy role is an administrator of the account",
            resources=["aws_iam_role"], categories=[CheckCategories.IAM])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        policy = policy_document(conf, "assume_role_policy")
        statements = [s for s in as_list((policy or {}).get("Statement")) if isinstance(s, dict)]
        github = [s for s in statements if _is_github_statement(s)]
        if not github:
            raise NotApplicable
        tags = mapping(conf, "tags") or {}
        kind = tags.get(ROLE_KIND_TAG)
        if kind not in ROLE_KINDS:
            yield (f"a role GitHub can assume needs the tag {ROLE_KIND_TAG} with one of {', '.join(ROLE_KINDS)} "
                   f"(found {kind!r}), so what its trust may allow is known")
        subjects: list[str] = []
        for number, statement in enumerate(github, start=1):
            if statement.get("Effect") != "Allow":
                continue
            condition = statement.get("Condition") if isinstance(statement.get("Condition"), dict) else {}
            audiences = _claims(condition, "aud")
            if audiences != {"StringEquals": [AUDIENCE]}:
                yield f"statement {number}: aud must be StringEquals {AUDIENCE!r}, found {audiences or 'none'}"
            subs = _claims(condition, "sub")
            if set(subs) != {"StringEquals"}:
                yield f"statement {number}: sub must be matched with StringEquals only, found {subs or 'none'}"
            for value in (v for values in subs.values() for v in values):
                match = _SUBJECT.match(value)
                if any(c in value for c in "*?") or match is None:
                    yield f"statement {number}: sub {value!r} is not one exact repo:<owner>/<name>:<subject>"
                else:
                    subjects.append(match.group("subject"))
        if kind == "deploy":
            environment = tags.get(ENVIRONMENT_TAG)
            allowed = [f"environment:{environment}"]
            if not environment or sorted(set(subjects)) != allowed:
                yield (f"a deploy role accepts only environment:<its {ENVIRONMENT_TAG} tag> ({allowed[0]}), found "
                       f"{sorted(set(subjects)) or 'no subject'}")
        if kind == "image-push" and sorted(set(subjects)) != [MAIN_BRANCH]:
            yield f"the image-push role accepts only {MAIN_BRANCH}, found {sorted(set(subjects)) or 'no subject'}"


GithubOidcTrustIsExact()
