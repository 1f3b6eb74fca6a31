"""Command line of the platform report: ``python -m tools.report <command> ...``.

  report [--outdir DIR] [--format text|markdown|json] [--json-output FILE]
      GPU capacity and on-demand cost per environment (``make report``); the JSON form is also written to
      FILE (default reports/platform-report.json)
  docs [--outdir DIR] [--output FILE] [--check]
      regenerate docs/architecture.md from the synthesized stacks and the environment files (``make docs``);
      --check exits 1 when the file differs from what would be generated

Both read DIR (default: synthesize the working tree into a temporary folder) when it holds every environment, and
otherwise synthesize into a temporary folder. Environments: the files of $PLATFORM_ENV_DIR (default environments/);
``report`` honours $PLATFORM_ENVS, ``docs`` always describes every file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from platform_config.loader import DEFAULT_ENV_DIR, EnvironmentFileError, environment_files, load_environments
from tools.report.outdir import REPO_ROOT, SynthesisError, load_manifest, load_stacks, synthesized
from tools.report.render import FORMATS, build_reports, render, report_json

DEFAULT_JSON = REPO_ROOT / "reports" / "platform-report.json"
DEFAULT_DOC = REPO_ROOT / "docs" / "architecture.md"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def command_report(args: argparse.Namespace) -> int:
    environments = load_environments()
    with synthesized([e.name for e in environments], Path(args.outdir) if args.outdir else None) as outdir:
        reports = build_reports(environments, load_stacks(outdir))
    sys.stdout.write(render(reports, args.format, {e.name: e for e in environments}))
    if args.json_output:
        _write(Path(args.json_output), json.dumps(report_json(reports), indent=2) + "\n")
        print(f"JSON report written to {args.json_output}", file=sys.stderr)
    return 0


def command_docs(args: argparse.Namespace) -> int:
    from tools.report.architecture import render_architecture

    directory = Path(os.environ.get("PLATFORM_ENV_DIR") or DEFAULT_ENV_DIR)
    environments = load_environments(directory, names=[p.stem for p in environment_files(directory)])
    with synthesized([e.name for e in environments], Path(args.outdir) if args.outdir else None) as outdir:
        manifest = load_manifest(outdir)
        document = render_architecture(environments, manifest, load_stacks(outdir, manifest))
    target = Path(args.output)
    if args.check:
        current = target.read_text() if target.is_file() else ""
        if current != document:
            print(f"{target} is not what `make docs` generates from the current code and environment files: "
                  "run `make docs` and commit the result", file=sys.stderr)
            return 1
        print(f"{target} is current", file=sys.stderr)
        return 0
    _write(target, document)
    print(f"Wrote {target}", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m tools.report", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = root.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="GPU capacity and on-demand cost per environment")
    report.add_argument("--outdir", help="a synthesized folder to read (default: synthesize into a temporary one)")
    report.add_argument("--format", choices=FORMATS, default="text")
    report.add_argument("--json-output", default=str(DEFAULT_JSON),
                        help="also write the JSON form here ('' for nowhere; default reports/platform-report.json)")
    report.set_defaults(run=command_report)
    docs = commands.add_parser("docs", help="regenerate docs/architecture.md")
    docs.add_argument("--outdir", help="a synthesized folder to read (default: synthesize into a temporary one)")
    docs.add_argument("--output", default=str(DEFAULT_DOC))
    docs.add_argument("--check", action="store_true", help="exit 1 if the document is stale; write nothing")
    docs.set_defaults(run=command_docs)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except EnvironmentFileError as error:
        print(f"Invalid environment configuration ({len(error.problems)} problem(s)):", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except (SynthesisError, FileNotFoundError) as error:
        print(f"report: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
