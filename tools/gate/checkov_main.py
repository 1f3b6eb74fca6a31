"""checkov's command line, with policy documents handed to the checks as Terraform's HCL gives them.

The gate parses every policy written as a JSON string into an object (``stacks.parse_policy_strings``). checkov's
terraform_json parser then wraps every value inside the object in a list (``"Effect": ["Allow"]``), a shape no
built-in policy check expects: they are written for HCL's ``jsonencode({...})``, whose object arrives whole. Both
spellings pass a KMS key policy open to ``"AWS": "*"`` (CKV_AWS_33) and a GitHub trust with ``sub: "*"``
(CKV_AWS_393). Run as a script by ``scan.run`` with the checkov environment's Python, this module keeps the
IAM-shaped objects of policy attributes as one-element lists of the plain object (line markers removed), as for
HCL, and leaves every other attribute to checkov.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

from checkov.terraform_json import parser

_LINE_KEYS = frozenset({"__startline__", "__endline__"})
_hclify = parser.hclify


def _is_policy(key: str, value: Any) -> bool:
    return (key in ("policy", "assume_role_policy") or key.endswith("_policy")) \
        and isinstance(value, dict) and "Statement" in value


def _without_line_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_line_keys(v) for k, v in value.items() if k not in _LINE_KEYS}
    if isinstance(value, list):
        return [_without_line_keys(item) for item in value]
    return value


def hclify(obj: dict[str, Any], conf: dict[str, Any] | None = None,
           parent_key: str | None = None) -> dict[str, list[Any]]:
    policies = {key: value for key, value in obj.items() if _is_policy(key, value)}
    result = _hclify({key: value for key, value in obj.items() if key not in policies}, conf, parent_key)
    result.update({key: [_without_line_keys(value)] for key, value in policies.items()})
    return result


def main() -> int:
    parser.hclify = hclify  # the parser's own recursion looks the name up here too
    from checkov.main import Checkov

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=SyntaxWarning)
        return Checkov().run()


if __name__ == "__main__":
    sys.exit(main())
