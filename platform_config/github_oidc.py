"""The ``sub`` claim of this repository's GitHub Actions OIDC tokens, under the subject template the ``github``
stack sets on the repository (``include_claim_keys``: ``repo``, ``context``, ``ref``, ``job_workflow_ref``).

GitHub builds a customized ``sub`` by joining ``<key>:<value>`` of the included claims, in the template's order:

- ``repo``: ``<owner>/<name>``;
- ``context``: what follows the repository in the default format: ``environment:<name>`` when the job names a
  GitHub environment, else ``pull_request`` for a pull-request event, else ``ref:<ref>``;
- ``ref``: the git ref of the run: ``refs/heads/main`` for a push to main or a manual run from main,
  ``refs/pull/<number>/merge`` for a pull request;
- ``job_workflow_ref``: ``<owner>/<name>/.github/workflows/<file>@<ref>``, the workflow file the job comes from.

For example
``repo:o/r:environment:prod:ref:refs/heads/main:job_workflow_ref:o/r/.github/workflows/deploy.yml@refs/heads/main``
(a deploy job of prod).
A pull request's number is the only part not known in advance, so ``refs/pull/*/merge`` is the only wildcard a
trust may hold (IAM ``StringLike``); everything else is matched exactly. A ``:`` inside a value would reach the
token as ``%3A``: names here have none (GitHub environment names are checked against ``GITHUB_ENVIRONMENT_NAME``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The subject template, in the order GitHub joins the claims.
SUBJECT_CLAIM_KEYS = ("repo", "context", "ref", "job_workflow_ref")
MAIN_REF = "refs/heads/main"
#: The ref of every pull request's run (the merge commit GitHub makes); the number is the wildcard.
PULL_REQUEST_REF = "refs/pull/*/merge"
WORKFLOWS_DIR = ".github/workflows"
GITHUB_ENVIRONMENT_NAME = re.compile(r"^[A-Za-z0-9._-]{1,255}$")

_SUB = re.compile(
    r"^repo:(?P<repository>[^:]+)"
    r":(?P<context>environment:[^:]+|pull_request|ref:[^:]+)"
    r":ref:(?P<ref>[^:]+)"
    r":job_workflow_ref:(?P<workflow_repository>[^:@]+?)/\.github/workflows/(?P<workflow>[^:@/]+)@(?P<workflow_ref>[^:]+)$")


@dataclass(frozen=True)
class WorkflowSubject:
    """Jobs that may assume a role: jobs of ``workflow`` (a file of ``.github/workflows``) run from ``ref``, in the
    GitHub environment ``environment`` (None: jobs that name no environment)."""

    workflow: str
    ref: str
    environment: str | None = None

    def __post_init__(self) -> None:
        if self.environment is not None and not GITHUB_ENVIRONMENT_NAME.match(self.environment):
            raise ValueError(f"GitHub environment {self.environment!r}: letters, digits, '.', '_' and '-' only")
        if not re.fullmatch(r"[A-Za-z0-9._-]+\.ya?ml", self.workflow):
            raise ValueError(f"workflow {self.workflow!r} must be a file name of {WORKFLOWS_DIR} (<name>.yml)")
        if self.ref != PULL_REQUEST_REF and not re.fullmatch(r"refs/(heads|tags)/[A-Za-z0-9._/-]+", self.ref):
            raise ValueError(f"ref {self.ref!r} must be refs/heads/<branch>, refs/tags/<tag> or {PULL_REQUEST_REF} "
                             "(no other wildcard)")

    @property
    def context(self) -> str:
        if self.environment is not None:
            return f"environment:{self.environment}"
        return "pull_request" if self.ref == PULL_REQUEST_REF else f"ref:{self.ref}"

    @property
    def is_pattern(self) -> bool:
        """True when the claim holds the pull-request wildcard (it must be matched with ``StringLike``)."""
        return self.ref == PULL_REQUEST_REF

    def claim(self, repository: str) -> str:
        """The ``sub`` value (or ``StringLike`` pattern) of these jobs' tokens in ``repository``."""
        return (f"repo:{repository}:{self.context}:ref:{self.ref}"
                f":job_workflow_ref:{repository}/{WORKFLOWS_DIR}/{self.workflow}@{self.ref}")


@dataclass(frozen=True)
class ParsedSubject:
    """A ``sub`` value of the template, taken apart."""

    repository: str
    context: str
    ref: str
    workflow_repository: str
    workflow: str
    workflow_ref: str

    @property
    def environment(self) -> str | None:
        return self.context.split(":", 1)[1] if self.context.startswith("environment:") else None


def parse_subject(value: str) -> ParsedSubject | None:
    """``value`` taken apart, or None when it is not of the template's format."""
    match = _SUB.match(value)
    return ParsedSubject(**match.groupdict()) if match else None
