"""What the delivery workflows read from a synthesized folder, as plain functions the tests call too.

- which stacks belong to an environment, and their apply order (``manifest.json`` dependencies);
- the plan matrix of a pull request (environments whose stacks the synth diff says change);
- a GitHub Actions role's ARN and the ECR registry of an environment, found in the synthesized stacks (roles by
  their ``github-actions-role`` tag, the account from the AWS provider's ``allowed_account_ids``), so the
  workflows keep no hand-copied ARNs;
- a summary of a ``terraform show -json`` plan, the pull-request comment, and SARIF run categories.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from platform_config.github_oidc import parse_subject
from tools.synth_diff.diff import load_stacks
from tools.synth_diff.stateful import is_stateful

#: Mirrors modules/delivery/github_delivery.py (ROLE_KIND_TAG and the environment tag of deploy roles); a test keeps
#: them equal.
ROLE_KIND_TAG = "github-actions-role"
ENVIRONMENT_TAG = "github-environment"
ROLE_KINDS = ("plan", "deploy", "image-push", "gitops-pull-request")
#: GitHub refuses comments longer than 65,536 characters.
COMMENT_LIMIT = 60_000


def environment_names(env_dir: Path, stacks: Sequence[str] = ()) -> list[str]:
    """The environments of a folder of environment files (``<name>.yaml``); without such files, the prefixes of
    the ``stacks`` names (``<env>-<layer>``)."""
    names = sorted(p.stem for p in Path(env_dir).glob("*.yaml"))
    return names or sorted({s.rsplit("-", 1)[0] for s in stacks if "-" in s})


def environment_of(stack: str, environments: Sequence[str]) -> str | None:
    """The environment a stack (``<env>-<layer>``) belongs to; the longest matching name wins."""
    matches = [e for e in environments if stack.startswith(f"{e}-")]
    return max(matches, key=len) if matches else None


def stacks_of(manifest: Mapping[str, Mapping], environment: str, environments: Sequence[str]) -> list[str]:
    return sorted(name for name in manifest if environment_of(name, environments) == environment)


def deploy_order(manifest: Mapping[str, Mapping], names: Sequence[str]) -> list[str]:
    """``names`` ordered so every stack comes after the stacks it depends on (ties by name). Dependencies outside
    ``names`` are taken as already applied."""
    wanted = set(names)
    unknown = wanted - manifest.keys()
    if unknown:
        raise KeyError(f"stack(s) {', '.join(sorted(unknown))} not in the manifest "
                       f"(synthesized: {', '.join(sorted(manifest))})")
    waiting = {n: {d for d in manifest[n].get("dependencies", []) if d in wanted} for n in wanted}
    order: list[str] = []
    while waiting:
        ready = sorted(n for n, deps in waiting.items() if not deps)
        if not ready:
            raise ValueError(f"stacks depend on each other in a cycle: {', '.join(sorted(waiting))}")
        for name in ready:
            order.append(name)
            del waiting[name]
        for deps in waiting.values():
            deps.difference_update(ready)
    return order


def plan_matrix(changed_stacks: Sequence[str], manifest: Mapping[str, Mapping],
                environments: Sequence[str], plan_environments: Mapping[str, str | None] | None = None,
                approval: str | None = None) -> dict:
    """A GitHub Actions matrix with one entry per environment that has changed stacks: ``environment``,
    ``stacks`` (space-separated, in apply order) and ``github_environment`` (the GitHub environment the plan job
    must run in, from ``plan_environments``; empty when the plan role trusts pull requests directly).

    ``approval="required"`` keeps only entries with a GitHub environment, ``"none"`` only those without."""
    plan_environments = plan_environments or {}
    by_environment: dict[str, list[str]] = {}
    for stack in changed_stacks:
        environment = environment_of(stack, environments)
        if environment is not None and stack in manifest:
            by_environment.setdefault(environment, []).append(stack)
    include = [{"environment": e, "stacks": " ".join(deploy_order(manifest, stacks)),
                "github_environment": plan_environments.get(e) or ""}
               for e, stacks in sorted(by_environment.items())]
    if approval is not None:
        include = [i for i in include if bool(i["github_environment"]) is (approval == "required")]
    return {"include": include}


def plan_github_environments(outdir: Path, environments: Sequence[str]) -> dict[str, str | None]:
    """Environment -> the GitHub environment its plan role trusts (the ``environment:<name>`` context of the
    role's ``sub`` condition), or None when it trusts pull requests. The workflow follows what the role accepts: a
    plan job outside that GitHub environment could not assume it."""
    found: dict[str, str | None] = {}
    for name, stack in load_stacks(outdir).items():
        environment = environment_of(name, environments)
        for role in ((stack.get("resource") or {}).get("aws_iam_role") or {}).values():
            if environment is None or (role.get("tags") or {}).get(ROLE_KIND_TAG) != "plan":
                continue
            subjects = [subject for statement in json.loads(role["assume_role_policy"])["Statement"]
                        for condition in statement.get("Condition", {}).values()
                        for key, values in condition.items() if key.endswith(":sub")
                        for subject in ([values] if isinstance(values, str) else values)]
            parsed = [parse_subject(s) for s in subjects]
            named = sorted({p.environment for p in parsed if p is not None and p.environment is not None})
            if len(named) > 1:
                raise ValueError(f"the plan role of {environment!r} trusts several GitHub environments: {named}")
            found[environment] = named[0] if named else None
    return found


#: Key administration without use: the environment's admins manage the state key but cannot decrypt the state.
STATE_KEY_ADMIN_ACTIONS = ("kms:CancelKeyDeletion", "kms:DescribeKey", "kms:DisableKeyRotation",
                           "kms:EnableKeyRotation", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus",
                           "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:TagResource",
                           "kms:UntagResource", "kms:UpdateKeyDescription")
STATE_KEY_USE_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey")


def state_key_policy(outdir: Path, environment: str, environments: Sequence[str], *, region: str,
                     admin_arns: Sequence[str], bootstrap_principal: str | None = None) -> dict:
    """The key policy of an environment's state key: only its deploy and plan roles (found in the synthesized
    delivery stack) use it, and only through S3; the admins administer it without using it.

    ``bootstrap_principal`` may also use it, for the first apply of the delivery stack (which creates the roles);
    put the policy again without it afterwards. Principals are matched by ``aws:PrincipalArn``, so the policy is
    valid before the roles exist (a key policy naming a missing principal is refused)."""
    roles = [github_role_arn(outdir, environment, "plan", environments),
             github_role_arn(outdir, environment, "deploy", environments)]
    account = roles[0].split(":")[4]
    users = roles + ([bootstrap_principal] if bootstrap_principal else [])
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "AdministerWithoutUse", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
         "Action": list(STATE_KEY_ADMIN_ACTIONS), "Resource": "*",
         "Condition": {"ArnEquals": {"aws:PrincipalArn": sorted(admin_arns)}}},
        {"Sid": "UseForTheStateThroughS3Only", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": list(STATE_KEY_USE_ACTIONS),
         "Resource": "*",
         "Condition": {"ArnEquals": {"aws:PrincipalArn": users},
                       "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}},
    ]}


#: Providers that talk to the Kubernetes API: a stack that configures one plans and applies against the cluster, so
#: only a runner inside the environment's VPC can run it (the API endpoint is private).
CLUSTER_API_PROVIDERS = ("kubernetes", "helm")
#: Which stacks a workflow job takes: those that only call AWS APIs, or those that talk to the cluster API.
LAYER_KINDS = ("aws", "in-cluster")
#: The CodeBuild webhook event of GitHub Actions runners (mirrors modules/cluster/github_runner.py).
RUNNER_WEBHOOK_EVENT = "WORKFLOW_JOB_QUEUED"


def talks_to_cluster_api(stack: Mapping) -> bool:
    """Whether a synthesized stack configures a provider that calls the Kubernetes API."""
    return any(provider in (stack.get("provider") or {}) for provider in CLUSTER_API_PROVIDERS)


def stacks_of_kind(stacks: Mapping[str, Mapping], names: Sequence[str], kind: str) -> list[str]:
    """The stacks of ``names`` (order kept) that are of ``kind``: ``in-cluster`` (they talk to the cluster API) or
    ``aws`` (they do not)."""
    if kind not in LAYER_KINDS:
        raise ValueError(f"unknown layer kind {kind!r}; allowed: {', '.join(LAYER_KINDS)}")
    return [n for n in names if talks_to_cluster_api(stacks[n]) == (kind == "in-cluster")]


def runner_project(outdir: Path, environment: str, environments: Sequence[str]) -> str:
    """The name of the CodeBuild project that hosts ``environment``'s in-VPC GitHub Actions runners: the project
    of the one webhook that starts builds on queued workflow jobs. Jobs select it with the label
    ``codebuild-<project>-<run id>-<run attempt>``."""
    found = []
    for stack in environment_stacks(outdir, environment, environments).values():
        resources = stack.get("resource") or {}
        projects = resources.get("aws_codebuild_project") or {}
        for webhook in (resources.get("aws_codebuild_webhook") or {}).values():
            patterns = {f.get("pattern") for group in webhook.get("filter_group") or []
                        for f in group.get("filter") or [] if f.get("type") == "EVENT"}
            if RUNNER_WEBHOOK_EVENT not in patterns:
                continue
            reference = webhook["project_name"].removeprefix("${aws_codebuild_project.").removesuffix(".name}")
            if reference in projects:
                found.append(projects[reference]["name"])
    if len(found) != 1:
        raise LookupError(f"expected one CodeBuild project with a {RUNNER_WEBHOOK_EVENT} webhook in the stacks of "
                          f"{environment!r}, found {len(found)}{': ' + ', '.join(found) if found else ''}. Does the "
                          f"environment set `delivery` (the runners need its GitHub connection)?")
    return found[0]


def environment_stacks(outdir: Path, environment: str, environments: Sequence[str]) -> dict[str, dict]:
    stacks = load_stacks(outdir)
    mine = {n: s for n, s in stacks.items() if environment_of(n, environments) == environment}
    if not mine:
        raise LookupError(f"no stack of environment {environment!r} in {outdir} "
                          f"(synthesized: {', '.join(sorted(stacks))})")
    return mine


def _aws_provider(stacks: Mapping[str, Mapping], environment: str) -> dict:
    for stack in stacks.values():
        for provider in (stack.get("provider") or {}).get("aws") or []:
            if provider.get("allowed_account_ids") and provider.get("region"):
                return provider
    raise LookupError(f"no AWS provider with allowed_account_ids and region in the stacks of {environment!r}")


def github_role_arn(outdir: Path, environment: str, kind: str, environments: Sequence[str]) -> str:
    """The ARN of the GitHub Actions role of ``kind`` (plan, deploy, image-push) in ``environment``'s account,
    from the synthesized stacks. A deploy role must also be tagged with that environment."""
    if kind not in ROLE_KINDS:
        raise ValueError(f"unknown role kind {kind!r}; allowed: {', '.join(ROLE_KINDS)}")
    stacks = environment_stacks(outdir, environment, environments)
    account = _aws_provider(stacks, environment)["allowed_account_ids"][0]
    names = sorted(
        role["name"] for stack in stacks.values()
        for role in ((stack.get("resource") or {}).get("aws_iam_role") or {}).values()
        if (role.get("tags") or {}).get(ROLE_KIND_TAG) == kind
        and (kind != "deploy" or (role.get("tags") or {}).get(ENVIRONMENT_TAG) == environment))
    if len(names) != 1:
        found = f"found {len(names)}: {', '.join(names)}" if names else "found none"
        raise LookupError(f"expected one {kind} role tagged {ROLE_KIND_TAG}={kind} in the stacks of "
                          f"{environment!r}, {found}. Is the delivery construct wired into the "
                          f"{environment}-delivery stack, and the stack deployed once by hand (README: bootstrap)?")
    return f"arn:aws:iam::{account}:role/{names[0]}"


def aws_target(outdir: Path, environment: str, environments: Sequence[str]) -> dict[str, str]:
    """The account, region and ECR registry host of ``environment``, from its stacks' AWS provider."""
    provider = _aws_provider(environment_stacks(outdir, environment, environments), environment)
    account, region = provider["allowed_account_ids"][0], provider["region"]
    return {"account_id": account, "region": region, "registry": f"{account}.dkr.ecr.{region}.amazonaws.com"}


def summarize_plan(plan: Mapping) -> dict:
    """Counts and the notable addresses of a ``terraform show -json`` plan."""
    counts = {"add": 0, "change": 0, "destroy": 0, "replace": 0, "forget": 0}
    destroyed, replaced, stateful = [], [], []
    for change in plan.get("resource_changes") or []:
        if change.get("mode") == "data":
            continue
        actions = change.get("change", {}).get("actions") or []
        address, resource_type = change.get("address", "?"), change.get("type", "")
        if set(actions) == {"create", "delete"}:
            counts["replace"] += 1
            replaced.append(address)
        elif actions == ["create"]:
            counts["add"] += 1
        elif actions == ["update"]:
            counts["change"] += 1
        elif actions == ["delete"]:
            counts["destroy"] += 1
            destroyed.append(address)
        elif actions == ["forget"]:
            counts["forget"] += 1
        else:
            continue
        if "delete" in actions and is_stateful(resource_type):
            stateful.append(address)
    return {**counts, "destroyed": destroyed, "replaced": replaced, "stateful_destroyed": stateful}


def render_pr_comment(*, diff_markdown: str, plans: Mapping[str, Mapping], planned_stacks: Sequence[str],
                      gate_outcome: str, gate_log: str = "", run_url: str = "") -> str:
    """The pull request's one report: plans per stack, the policy gate, and the synth diff.

    ``plans``: stack -> ``summarize_plan`` result, or ``{"error": "..."}`` for a plan that failed.
    ``planned_stacks``: the stacks that should have a plan (those the synth diff says change).
    ``gate_outcome``: the step outcome of ``make gate`` (success, failure, cancelled, skipped).
    """
    lines = ["## Platform report", ""]
    if run_url:
        lines += [f"Workflow run: {run_url}", ""]
    lines += ["### Terraform plans", ""]
    if not planned_stacks:
        lines += ["No stack changes, nothing to plan.", ""]
    else:
        lines += ["| stack | plan | add | change | destroy | replace | notes |", "|---|---|---|---|---|---|---|"]
        for stack in planned_stacks:
            plan = plans.get(stack)
            if plan is None:
                lines.append(f"| `{stack}` | not run | | | | | see the workflow run |")
            elif "error" in plan:
                lines.append(f"| `{stack}` | :x: failed | | | | | {str(plan['error']).replace('|', '/')} |")
            else:
                notes = []
                if plan["stateful_destroyed"]:
                    stateful = ", ".join(f"`{a}`" for a in plan["stateful_destroyed"])
                    notes.append(f":warning: destroys stateful {stateful}")
                if plan["replaced"]:
                    notes.append("replaces " + ", ".join(f"`{a}`" for a in plan["replaced"][:10]))
                lines.append(f"| `{stack}` | :white_check_mark: | {plan['add']} | {plan['change']} | "
                             f"{plan['destroy']} | {plan['replace']} | {'; '.join(notes)} |")
        lines.append("")
    outcomes = {"success": ":white_check_mark: passed", "failure": ":x: failed"}
    icon = outcomes.get(gate_outcome, gate_outcome or "not run")
    lines += ["### Policy gate (checkov)", "", f"`make gate`: {icon}", ""]
    if gate_log.strip():
        tail = "\n".join(gate_log.strip().splitlines()[-60:])
        lines += ["<details><summary>gate output (last lines)</summary>", "", "```text", tail, "```", "",
                  "</details>", ""]
    lines += [diff_markdown.strip(), ""]
    comment = "\n".join(lines)
    if len(comment) > COMMENT_LIMIT:
        note = "\n\n*The report is cut here (GitHub's comment size limit): the full synth diff is in the run's " \
               "job summary and artifacts.*\n"
        comment = comment[:COMMENT_LIMIT - len(note)] + note
    return comment


def label_sarif_runs(folder: Path, prefix: str = "checkov") -> list[Path]:
    """Give each run of each ``*.sarif`` file in ``folder`` its own category (``<prefix>/<file stem>/``) where it
    has none. Code scanning refuses an upload with several runs of the same tool and category."""
    labelled = []
    for sarif_file in sorted(Path(folder).glob("*.sarif")):
        log = json.loads(sarif_file.read_text())
        runs = log.get("runs") or []
        for index, run in enumerate(runs):
            details = run.setdefault("automationDetails", {})
            if not details.get("id"):
                details["id"] = f"{prefix}/{sarif_file.stem}/" + (f"{index}/" if len(runs) > 1 else "")
        sarif_file.write_text(json.dumps(log, indent=2))
        labelled.append(sarif_file)
    return labelled
