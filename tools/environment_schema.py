"""``python -m tools.environment_schema``: write schema/environment.schema.json, the JSON Schema of an environment
file generated from the models (platform_config.models.Environment), for editors: each environment file names it
in its first line (``# yaml-language-server: $schema=../schema/environment.schema.json``), so YAML editors
complete and check fields as you type. The models stay the authority: cross-field rules (a MIG layout that fits a
GPU, subnets inside the VPC, ...) are checked by ``make synth``, not by the schema.

``--check`` exits 1 when the committed file is not what the models produce now.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from platform_config.models import Environment

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema" / "environment.schema.json"
#: The first line of every environment file (relative to environments/).
MODELINE = "# yaml-language-server: $schema=../schema/environment.schema.json"


def environment_schema() -> str:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "$id": "environment.schema.json", **Environment.model_json_schema()}
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.environment_schema", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when the committed schema is stale")
    args = parser.parse_args(argv)
    generated = environment_schema()
    if args.check:
        current = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
        if current != generated:
            print(f"{SCHEMA_FILE.name} is stale: run make schema", file=sys.stderr)
            return 1
        return 0
    SCHEMA_FILE.parent.mkdir(exist_ok=True)
    SCHEMA_FILE.write_text(generated, encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
