"""Roles GitHub Actions assumes through OIDC trust exactly the tokens they were made for.

The gate resolves a ``Federated`` principal that references the stack's OIDC provider to the provider's ARN
(``arn:aws:iam::<account>:oidc-provider/token.actions.githubusercontent.com``), so the trust is checked whatever
way it names the provider. The repository's subject template (the ``github`` stack: ``repo``, ``context``,
``ref``, ``job_workflow_ref``) makes every token's ``sub``
``repo:<owner>/<name>:<context>:ref:<ref>:job_workflow_ref:<owner>/<name>/.github/workflows/<file>@<ref>``, the
context being ``environment:<name>``, ``pull_request`` or ``ref:<ref>``. Each role says what it is for in its
``github-actions-role`` tag (modules/delivery):

- every role: ``aud`` is ``sts.amazonaws.com`` (StringEquals); each ``sub`` value is of the template's format,
  with the same repository and ref in both places, and matched with StringEquals without wildcards;
- ``plan`` only: StringLike on pull-request values, whose only wildcard is the pull request's number
  (``refs/pull/*/merge``), since a pull request's ref is not known in advance;
- ``deploy``: the only context is ``environment:<its github-environment tag>`` and the only ref main, so the GitHub
  environment's protection rules (required reviewers, main as the only deployment branch) decide who deploys;
  the reason of the AdministratorAccess skip in policies/skips.yaml rests on this;
- ``image-push``: likewise, the only context is ``environment:<its github-environment tag>`` (prod-tier
  environments' reviewers approve there) and the only ref main;
- ``gitops-pull-request``: only the ref main.
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
MAIN_REF = "refs/heads/main"
PULL_REQUEST_REF = "refs/pull/*/merge"
#: The kinds of role modules/delivery makes (its GithubRole values); a new kind is added here with its rule.
ROLE_KINDS = ("plan", "deploy", "image-push", "gitops-pull-request")
_SUBJECT = re.compile(
    r"^repo:(?P<repository>[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+)"
    r":(?P<context>environment:[A-Za-z0-9._-]+|pull_request|ref:[^:*?]+)"
    r":ref:(?P<ref>[^:]+)"
    r":job_workflow_ref:(?P<workflow_repository>[^:@]+?)/\.github/workflows/(?P<workflow>[A-Za-z0-9._-]+)"
    r"@(?P<workflow_ref>[^:]+)$")


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
            name="GitHub OIDC trust: aud sts.amazonaws.com, exact sub of the repository's template; deploy and "
                 "image-push roles only their GitHub environment, from main",
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
        subjects: list[tuple[str, str]] = []  # (context, ref) of each value
        for number, statement in enumerate(github, start=1):
            if statement.get("Effect") != "Allow":
                continue
            condition = statement.get("Condition") if isinstance(statement.get("Condition"), dict) else {}
            audiences = _claims(condition, "aud")
            if audiences != {"StringEquals": [AUDIENCE]}:
                yield f"statement {number}: aud must be StringEquals {AUDIENCE!r}, found {audiences or 'none'}"
            subs = _claims(condition, "sub")
            allowed_operators = {"StringEquals", "StringLike"} if kind == "plan" else {"StringEquals"}
            if not subs or set(subs) - allowed_operators:
                yield (f"statement {number}: sub must be matched with {' or '.join(sorted(allowed_operators))} "
                       f"only, found {subs or 'none'}")
                continue
            for operator, values in subs.items():
                for value in values:
                    problem, subject = _subject(value, pattern=operator == "StringLike")
                    if problem:
                        yield f"statement {number}: sub {value!r} {problem}"
                    else:
                        subjects.append(subject)
        found = sorted({f"{context} from {ref}" for context, ref in subjects}) or "no subject"
        if kind in ("deploy", "image-push"):
            environment = tags.get(ENVIRONMENT_TAG)
            allowed = {(f"environment:{environment}", MAIN_REF)}
            if not environment or set(subjects) != allowed:
                yield (f"a{'n' if kind == 'image-push' else ''} {kind} role accepts only environment:<its "
                       f"{ENVIRONMENT_TAG} tag> (environment:{environment}) from {MAIN_REF}, found {found}")
        if kind == "gitops-pull-request" and {ref for _, ref in subjects} != {MAIN_REF}:
            yield f"the gitops-pull-request role accepts only jobs run from {MAIN_REF}, found {found}"


def _subject(value: str, *, pattern: bool) -> tuple[str | None, tuple[str, str]]:
    """(why ``value`` is not an acceptable sub, or None; its (context, ref))."""
    exact_part = value.replace(PULL_REQUEST_REF, "refs/pull/0/merge") if pattern else value
    if any(c in exact_part for c in "*?"):
        return (f"has a wildcard outside {PULL_REQUEST_REF}" if pattern else "has a wildcard (StringEquals reads "
                "it literally)"), ("", "")
    if pattern and PULL_REQUEST_REF not in value:
        return f"is matched with StringLike but holds no {PULL_REQUEST_REF}", ("", "")
    match = _SUBJECT.match(value)
    if match is None:
        return ("is not of the repository's subject template repo:<owner>/<name>:<context>:ref:<ref>:"
                "job_workflow_ref:<owner>/<name>/.github/workflows/<file>@<ref>"), ("", "")
    if match["workflow_repository"] != match["repository"] or match["workflow_ref"] != match["ref"]:
        return "names another repository or ref in job_workflow_ref than in repo and ref", ("", "")
    return None, (match["context"], match["ref"])


GithubOidcTrustIsExact()
