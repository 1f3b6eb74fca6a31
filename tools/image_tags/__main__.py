"""``python -m tools.image_tags <command>``

  target --env ENV                  the environment's GitOps repository and tags file, as key=value lines for
                                    $GITHUB_OUTPUT: repository (owner/name), owner, name, revision, file, updates
                                    (direct | pull-request) and secret (the GitHub App's Secrets Manager secret)
  set --file FILE --matrix JSON     write each image's tag of the image workflow's matrix (what the environment
                                    runs, just pushed) into FILE; prints the images whose tag changed

Exit 1 with one message naming the file or field on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from platform_config.gitops import image_tags_path
from platform_config.images import GITOPS_APP_SECRET
from platform_config.loader import DEFAULT_ENV_DIR, EnvironmentFileError, load_environment
from tools.image_tags.tags_file import TagsFileError, matrix_tags, set_tags


def target_lines(env_name: str, env_dir: Path = DEFAULT_ENV_DIR) -> list[str]:
    environment = load_environment(env_dir / f"{env_name}.yaml")
    gitops = environment.platform.gitops
    repository = gitops.github_repository
    if repository is None:
        raise EnvironmentFileError([f"{env_name}: platform.gitops.repository_url: {gitops.repository_url} is not a "
                                    "GitHub repository (allowed: https://github.com/<owner>/<name>.git)"])
    owner, name = repository.split("/")
    return [f"repository={repository}", f"owner={owner}", f"name={name}", f"revision={gitops.revision}",
            f"file={image_tags_path(gitops.path)}", f"updates={gitops.image_updates.value}",
            f"secret={GITOPS_APP_SECRET}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.image_tags")
    commands = parser.add_subparsers(dest="command", required=True)
    target = commands.add_parser("target", help="where the environment's tags live")
    target.add_argument("--env", required=True)
    target.add_argument("--env-dir", type=Path, default=DEFAULT_ENV_DIR)
    setter = commands.add_parser("set", help="write the tags of the images just pushed")
    setter.add_argument("--file", type=Path, required=True)
    setter.add_argument("--matrix", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "target":
            print("\n".join(target_lines(args.env, args.env_dir)))
        else:
            for image in set_tags(args.file, matrix_tags(args.matrix)):
                print(image)
    except (EnvironmentFileError, TagsFileError) as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
