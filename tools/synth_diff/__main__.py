"""Command line of the synth diff and of the workflow helpers: ``python -m tools.synth_diff <command> ...``.

  diff --base REV            synthesize REV and the working tree, print what changes (exit 0 whatever changes)
  diff --base-outdir A --head-outdir B   compare two synthesized folders, no synthesis
  order --env ENV [--layers aws|in-cluster]   the environment's stacks in apply order, one per line (only those
                             that call AWS APIs alone, or only those that talk to the cluster API)
  plan-matrix --diff-json F [--approval none|required] [--layers aws|in-cluster]   the pull-request plan matrix
                             (JSON) from a ``diff --format json`` result, with the GitHub environment each plan
                             runs in; in-cluster entries name their environment's runner project
  runner-project --env ENV   the CodeBuild project of the environment's in-VPC GitHub Actions runners
  state-key-policy --env ENV the key policy of the environment's state key (README: bootstrap)
  role-arn --env ENV --kind KIND   a GitHub Actions role's ARN (plan, deploy, image-push, gitops-pull-request),
                             from the synthesized stacks
  aws-target --env ENV       account_id=, region= and registry= lines (for $GITHUB_OUTPUT)
  image-matrix --env ENV     the images built here that the environment runs, with their tags (JSON matrix)
  plan-summary PLAN_JSON     counts of a ``terraform show -json`` plan (JSON)
  comment ...                the pull-request report (Markdown)
  sarif-categories DIR       give every SARIF run in DIR its own code-scanning category
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from tools.synth_diff.diff import diff_synth_folders, load_manifest, load_stacks
from tools.synth_diff.images import image_matrix
from tools.synth_diff.pipeline import (
    LAYER_KINDS,
    ROLE_KINDS,
    aws_target,
    deploy_order,
    environment_names,
    github_role_arn,
    label_sarif_runs,
    plan_github_environments,
    plan_matrix,
    render_pr_comment,
    runner_project,
    stacks_of,
    stacks_of_kind,
    state_key_policy,
    summarize_plan,
)
from tools.synth_diff.render import FORMATS, render, to_json
from tools.synth_diff.synth import SynthesisError, run_synth, synthesize_both

REPO_ROOT = Path(__file__).resolve().parents[2]


def _environments(args: argparse.Namespace) -> list[str]:
    return environment_names(Path(args.env_dir), list(load_manifest(Path(args.outdir))))


def _write(text: str, output: str | None) -> None:
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text)
    else:
        sys.stdout.write(text)


def command_diff(args: argparse.Namespace) -> int:
    if not args.base and not args.base_outdir:
        print("diff: give --base <git revision> or --base-outdir <synthesized folder>", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="synth-diff-out-") as scratch:
        base_outdir = Path(args.base_outdir) if args.base_outdir else Path(scratch) / "base"
        head_outdir = Path(args.head_outdir) if args.head_outdir else Path(scratch) / "head"
        base_label = args.base or str(base_outdir)
        head_label = "working tree" if not args.head_outdir else str(head_outdir)
        try:
            if args.base_outdir:
                if not args.head_outdir:
                    run_synth(REPO_ROOT, head_outdir, label="the working tree")
            else:
                commit = synthesize_both(REPO_ROOT, args.base, base_outdir,
                                         None if args.head_outdir else head_outdir)
                base_label = commit[:12] if commit.startswith(args.base) else f"{args.base} ({commit[:12]})"
            diff = diff_synth_folders(base_outdir, head_outdir)
        except (SynthesisError, FileNotFoundError, ValueError, KeyError) as error:
            print(f"synth diff: {error}", file=sys.stderr)
            return 1
        _write(render(diff, args.format, base_label=base_label, head_label=head_label), args.output)
        if args.json_output:
            _write(json.dumps(to_json(diff, base_label=base_label, head_label=head_label), indent=2) + "\n",
                   args.json_output)
    return 0


def command_order(args: argparse.Namespace) -> int:
    manifest = load_manifest(Path(args.outdir))
    names = args.stacks or stacks_of(manifest, args.env, _environments(args))
    if not names:
        print(f"order: no stack of environment {args.env!r} in {args.outdir}", file=sys.stderr)
        return 1
    ordered = deploy_order(manifest, names)
    if args.layers:
        ordered = stacks_of_kind(load_stacks(Path(args.outdir)), ordered, args.layers)
    print("\n".join(ordered))
    return 0


def command_plan_matrix(args: argparse.Namespace) -> int:
    changed = json.loads(Path(args.diff_json).read_text())["changed_stacks"]
    manifest = load_manifest(Path(args.outdir))
    if args.layers:
        stacks = load_stacks(Path(args.outdir))
        changed = stacks_of_kind(stacks, [s for s in changed if s in stacks], args.layers)
    environments = _environments(args)
    matrix = plan_matrix(changed, manifest, environments,
                         plan_github_environments(Path(args.outdir), environments), approval=args.approval)
    if args.layers == "in-cluster":
        try:
            for entry in matrix["include"]:
                entry["runner"] = runner_project(Path(args.outdir), entry["environment"], environments)
        except LookupError as error:
            print(f"plan-matrix: {error}", file=sys.stderr)
            return 1
    print(json.dumps(matrix, separators=(",", ":")))
    return 0


def command_state_key_policy(args: argparse.Namespace) -> int:
    from platform_config.loader import load_environments

    [environment] = load_environments(Path(args.env_dir), names=[args.env])
    try:
        policy = state_key_policy(Path(args.outdir), args.env, _environments(args),
                                  region=environment.state_backend.region,
                                  admin_arns=[a.arn for a in environment.cluster.admin_principals],
                                  bootstrap_principal=args.bootstrap_principal)
    except LookupError as error:
        print(f"state-key-policy: {error}", file=sys.stderr)
        return 1
    print(json.dumps(policy, indent=2))
    return 0


def command_runner_project(args: argparse.Namespace) -> int:
    try:
        print(runner_project(Path(args.outdir), args.env, _environments(args)))
    except LookupError as error:
        print(f"runner-project: {error}", file=sys.stderr)
        return 1
    return 0


def command_role_arn(args: argparse.Namespace) -> int:
    try:
        print(github_role_arn(Path(args.outdir), args.env, args.kind, _environments(args)))
    except LookupError as error:
        print(f"role-arn: {error}", file=sys.stderr)
        return 1
    return 0


def command_aws_target(args: argparse.Namespace) -> int:
    try:
        target = aws_target(Path(args.outdir), args.env, _environments(args))
    except LookupError as error:
        print(f"aws-target: {error}", file=sys.stderr)
        return 1
    print("\n".join(f"{key}={value}" for key, value in target.items()))
    return 0


def command_image_matrix(args: argparse.Namespace) -> int:
    try:
        matrix = image_matrix(Path(args.outdir), args.env, _environments(args))
    except (LookupError, ValueError) as error:
        print(f"image-matrix: {error}", file=sys.stderr)
        return 1
    if not matrix["include"]:
        print(f"image-matrix: environment {args.env!r} runs no image built here", file=sys.stderr)
        return 1
    print(json.dumps(matrix, separators=(",", ":")))
    return 0


def command_plan_summary(args: argparse.Namespace) -> int:
    plan = json.load(sys.stdin if args.plan == "-" else open(args.plan))  # noqa: SIM115
    print(json.dumps(summarize_plan(plan)))
    return 0


def command_comment(args: argparse.Namespace) -> int:
    diff_markdown = Path(args.diff).read_text() if args.diff and Path(args.diff).is_file() else \
        "### Synth diff\n\nThe synthesis or the synth diff failed: see the workflow run.\n"
    plans = {}
    if args.plans and Path(args.plans).is_dir():
        for summary in sorted(Path(args.plans).glob("*.json")):
            plans[summary.stem] = json.loads(summary.read_text())
    planned = args.planned_stacks.split() if args.planned_stacks else []
    gate_log = Path(args.gate_log).read_text(errors="replace") if args.gate_log and Path(args.gate_log).is_file() \
        else ""
    _write(render_pr_comment(diff_markdown=diff_markdown, plans=plans, planned_stacks=planned,
                             gate_outcome=args.gate_outcome, gate_log=gate_log, run_url=args.run_url), args.output)
    return 0


def command_sarif_categories(args: argparse.Namespace) -> int:
    for path in label_sarif_runs(Path(args.folder)):
        print(path)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m tools.synth_diff", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = root.add_subparsers(dest="command", required=True)
    env_dir = os.environ.get("PLATFORM_ENV_DIR") or str(REPO_ROOT / "environments")

    diff = commands.add_parser("diff", help="compare the synth of a revision with the working tree")
    diff.add_argument("--base", help="git revision to compare against (synthesized from a scratch export)")
    diff.add_argument("--base-outdir", help="an already synthesized base folder instead of --base")
    diff.add_argument("--head-outdir", help="an already synthesized head folder (default: synthesize the working "
                                            "tree)")
    diff.add_argument("--format", choices=FORMATS, default="markdown")
    diff.add_argument("--output", help="write the report to this file instead of stdout")
    diff.add_argument("--json-output", help="also write the JSON form to this file")
    diff.set_defaults(run=command_diff)

    for name, function, help_text in (("order", command_order, "stacks of an environment in apply order"),
                                      ("role-arn", command_role_arn, "ARN of a GitHub Actions role"),
                                      ("runner-project", command_runner_project,
                                       "CodeBuild project of the in-VPC GitHub Actions runners"),
                                      ("aws-target", command_aws_target, "account, region and registry"),
                                      ("image-matrix", command_image_matrix, "images to build for an environment")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--env", required=True)
        sub.add_argument("--outdir", default="cdktf.out")
        sub.add_argument("--env-dir", default=env_dir)
        sub.set_defaults(run=function)
        if name == "order":
            sub.add_argument("--stacks", nargs="*", help="only these stacks (still in apply order)")
            sub.add_argument("--layers", choices=LAYER_KINDS,
                             help="only the stacks that call AWS APIs alone (aws) or talk to the cluster API")
        if name == "role-arn":
            sub.add_argument("--kind", required=True, choices=ROLE_KINDS)

    matrix = commands.add_parser("plan-matrix", help="plan matrix from a JSON synth diff")
    matrix.add_argument("--diff-json", required=True)
    matrix.add_argument("--outdir", default="cdktf.out")
    matrix.add_argument("--env-dir", default=env_dir)
    matrix.add_argument("--approval", choices=("none", "required"),
                        help="only environments whose plans run without (none) or behind (required) a GitHub "
                             "environment's reviewers")
    matrix.add_argument("--layers", choices=LAYER_KINDS,
                        help="only the stacks that call AWS APIs alone (aws) or talk to the cluster API (in-cluster)")
    matrix.set_defaults(run=command_plan_matrix)

    key = commands.add_parser("state-key-policy", help="the key policy of an environment's state key (JSON)")
    key.add_argument("--env", required=True)
    key.add_argument("--outdir", default="cdktf.out")
    key.add_argument("--env-dir", default=env_dir)
    key.add_argument("--bootstrap-principal", help="also let this principal use the key (first delivery apply)")
    key.set_defaults(run=command_state_key_policy)

    summary = commands.add_parser("plan-summary", help="summarize `terraform show -json` output")
    summary.add_argument("plan", help="the plan JSON file, or - for stdin")
    summary.set_defaults(run=command_plan_summary)

    comment = commands.add_parser("comment", help="the pull-request report")
    comment.add_argument("--diff", help="the Markdown synth diff")
    comment.add_argument("--plans", help="folder of <stack>.json plan summaries")
    comment.add_argument("--planned-stacks", default="", help="space-separated stacks that should have a plan")
    comment.add_argument("--gate-outcome", default="skipped")
    comment.add_argument("--gate-log")
    comment.add_argument("--run-url", default="")
    comment.add_argument("--output")
    comment.set_defaults(run=command_comment)

    sarif = commands.add_parser("sarif-categories", help="one code-scanning category per SARIF run")
    sarif.add_argument("folder")
    sarif.set_defaults(run=command_sarif_categories)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
