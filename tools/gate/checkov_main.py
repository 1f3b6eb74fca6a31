"""checkov's command line, with policy documents handed to the checks as Terraform's HCL gives them.

The gate parses every policy written as a JSON string into an object (``stacks.parse_policy_strings``). checkov's
terraform_json parser then wraps every value inside the object in a list (``"Effect": ["Allow"]``), a shape no
built-in policy check expects: they are written for HCL's ``jsonencode({...})``, whose object arrives whole. Both
spellings pass a KMS key policy open to ``"AWS": "*"`` (CKV_AWS_33) and a GitHub trust with ``sub: "*"``
(CKV_AWS_393). Run as a script by ``scan.run`` with the checkov environment's Python, this module keeps the
IAM-shaped objects of policy attributes as one-element lists of the plain object (line markers removed), as for
HCL, and leaves every other attribute to checkov.

It also gives checkov's line-numbering YAML loader (which reads each ``cdk.tf.json``) libyaml's parser in place of
PyYAML's pure-Python one: the same nodes, marks and constructors, a third of the gate's time saved. A PyYAML built
without libyaml keeps checkov's loader.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

import yaml
from checkov.common.parsers.yaml import loader
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


def _line_loader_on_libyaml() -> type | None:
    """checkov's ``SafeLineLoader`` (its line markers on every mapping, its boolean spellings) with libyaml's
    parser in place of PyYAML's Reader, Scanner, Parser and Composer."""
    try:
        from yaml.cyaml import CParser
    except ImportError:  # PyYAML built without libyaml
        return None

    def __init__(self: Any, stream: Any) -> None:  # what yaml.CSafeLoader does
        CParser.__init__(self, stream)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)

    return type("CSafeLineLoader", (CParser, loader.SafeLineLoader), {"__init__": __init__})


def main() -> int:
    parser.hclify = hclify  # the parser's own recursion looks the name up here too
    fast_loader = _line_loader_on_libyaml()
    if fast_loader is not None:
        loader.SafeLineLoader = fast_loader  # looked up by name at each call of loader.loads
    from checkov.main import Checkov

    # checkov keeps every DEBUG record in memory for its support upload, which the gate never makes: formatting
    # them is a tenth of the scan. Warnings and errors still reach stderr, where the gate reads [ERROR] lines.
    logging.getLogger().setLevel(logging.WARNING)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=SyntaxWarning)
        return Checkov().run()


if __name__ == "__main__":
    sys.exit(main())
