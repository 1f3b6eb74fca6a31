"""The stacks of a synthesized folder, and their preparation for checkov.

cdktf writes explicit ``null``s into nested blocks, and checkov evaluates ``[None]`` as a value: an ingress rule
open to 0.0.0.0/0 on port 22 passed CKV_AWS_24 because of them. Terraform treats null as unset, so removing every
null changes nothing for Terraform and lets checkov see the real configuration. ``terraform.required_version``
makes checkov 3.3 report a parsing error, run no check on the file and still exit 0 (upstream issue 7454):
it has no security meaning, so it is removed from the copy. Policy documents cdktf writes as JSON strings are
parsed into objects (built-in checks read objects only), and a ``Federated`` principal that references the
stack's OIDC provider becomes the provider's ARN (CKV_AWS_393 recognizes GitHub's provider by it).

checkov names a Python check's resource ``resource.<name>`` in terraform_json output (graph checks get
``<type>.<name>``). The copy is written with ``indent=2``, so every resource starts on a line of its own whose
number checkov reports; ``resource_lines`` maps those lines back to ``<type>.<name>``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


class GateError(Exception):
    """A problem that stops the gate before any check runs (a missing folder, an unreadable manifest)."""


@dataclass(frozen=True)
class Stack:
    """A stack of the manifest: its name and the path of its synthesized JSON."""

    name: str
    source: Path


@dataclass
class PreparedStack:
    """A stack copied into the scratch folder, with what the copy changed and where its resources are."""

    stack: Stack
    scan_file: Path
    #: checkov's start line of a resource in the copy -> ``type.name`` (``data.type.name`` for data sources).
    scan_lines: dict[int, str]
    #: ``type.name`` -> its line in the original file (for SARIF locations), when the original is indented.
    source_lines: dict[str, int]
    #: ``type.name`` -> the cdktf construct path from the resource's ``//`` metadata.
    construct_paths: dict[str, str]
    #: every resource's ``type.name`` (``data.type.name`` for data sources).
    addresses: list[str]
    notes: list[str] = field(default_factory=list)
    #: the prepared document itself, for the checks the gate runs over whole stacks.
    document: dict[str, Any] = field(default_factory=dict, repr=False)


def read_manifest(out_dir: Path) -> list[Stack]:
    """The stacks listed in ``<out_dir>/manifest.json``, in manifest order."""
    if not out_dir.is_dir():
        raise GateError(f"{out_dir} is not a folder: synthesize first (make synth) or pass OUT=<folder>")
    manifest_path = out_dir / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GateError(f"{manifest_path} does not exist: {out_dir} is not a cdktf synth output") from None
    except (OSError, ValueError) as error:
        raise GateError(f"{manifest_path} cannot be read as JSON: {error}") from None
    entries = manifest.get("stacks") if isinstance(manifest, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise GateError(f"{manifest_path} lists no stacks")
    stacks = []
    for name, entry in entries.items():
        relative = entry.get("synthesizedStackPath") if isinstance(entry, dict) else None
        if not isinstance(relative, str) or not relative:
            relative = f"stacks/{name}/cdk.tf.json"
        stacks.append(Stack(name=name, source=out_dir / relative))
    return stacks


def unlisted_stack_files(out_dir: Path, stacks: list[Stack]) -> list[Path]:
    """``cdk.tf.json`` files under ``<out_dir>/stacks`` that the manifest does not list (left from older synths)."""
    listed = {stack.source.resolve() for stack in stacks}
    return sorted(p for p in (out_dir / "stacks").glob("*/cdk.tf.json") if p.resolve() not in listed)


def strip_nulls(value: Any) -> tuple[Any, int]:
    """``value`` without any JSON null, at any depth (object members and list elements), and how many went."""
    if isinstance(value, dict):
        kept, removed = {}, 0
        for key, item in value.items():
            if item is None:
                removed += 1
                continue
            kept[key], count = strip_nulls(item)
            removed += count
        return kept, removed
    if isinstance(value, list):
        kept_list, removed = [], 0
        for item in value:
            if item is None:
                removed += 1
                continue
            cleaned, count = strip_nulls(item)
            kept_list.append(cleaned)
            removed += count
        return kept_list, removed
    return value, 0


def _is_policy_key(key: str) -> bool:
    return key in ("policy", "assume_role_policy") or key.endswith("_policy")


def parse_policy_strings(value: Any) -> tuple[Any, int]:
    """``value`` with every policy attribute written as a JSON string (``policy``, ``assume_role_policy``,
    ``*_policy``, at any depth) replaced by the parsed document, and how many were parsed. Only IAM-shaped
    documents (an object with ``Statement``) are parsed: an ECR lifecycle policy or an expression stays as it is.
    Terraform compares these documents by content, so the object means the same as the string."""
    if isinstance(value, list):
        parsed = [parse_policy_strings(item) for item in value]
        return [item for item, _ in parsed], sum(count for _, count in parsed)
    if not isinstance(value, dict):
        return value, 0
    result, total = {}, 0
    for key, item in value.items():
        if isinstance(item, str) and _is_policy_key(key):
            try:
                document = json.loads(item)
            except ValueError:
                document = None
            if isinstance(document, dict) and "Statement" in document:
                result[key] = document
                total += 1
                continue
        result[key], count = parse_policy_strings(item)
        total += count
    return result, total


_OIDC_PROVIDER_ARN = re.compile(r"^\$\{aws_iam_openid_connect_provider\.([^.}]+)\.arn\}$")


def _account_id(document: dict[str, Any]) -> str:
    """The account the stack's AWS provider is allowed to touch (the account an ARN of the stack names)."""
    for provider in (document.get("provider") or {}).get("aws") or []:
        accounts = provider.get("allowed_account_ids") if isinstance(provider, dict) else None
        if isinstance(accounts, list) and len(accounts) == 1 and isinstance(accounts[0], str):
            return accounts[0]
    return "000000000000"


def resolve_oidc_principals(document: dict[str, Any]) -> int:
    """Replace each ``Federated`` principal that references an OIDC provider of the same stack
    (``${aws_iam_openid_connect_provider.<name>.arn}``) with the ARN AWS gives that provider,
    ``arn:aws:iam::<account>:oidc-provider/<host of its url>``, in place; returns how many. Checks that recognize
    a provider by its URL (CKV_AWS_393 looks for ``oidc-provider/token.actions.githubusercontent.com``) pass a
    reference whatever the trust allows. A provider whose url is itself an expression (EKS's issuer) is left."""
    providers = (document.get("resource") or {}).get("aws_iam_openid_connect_provider") or {}
    account, resolved = _account_id(document), 0

    def provider_arn(reference: Any) -> Any:
        match = _OIDC_PROVIDER_ARN.match(reference) if isinstance(reference, str) else None
        url = (providers.get(match.group(1)) or {}).get("url") if match else None
        if not isinstance(url, str) or "${" in url:
            return reference
        return f"arn:aws:iam::{account}:oidc-provider/{url.removeprefix('https://').rstrip('/')}"

    def walk(value: Any) -> None:
        nonlocal resolved
        if isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            principal = value.get("Principal")
            if isinstance(principal, dict) and "Federated" in principal:
                federated = principal["Federated"]
                new = [provider_arn(f) for f in federated] if isinstance(federated, list) else provider_arn(federated)
                resolved += new != federated
                principal["Federated"] = new
            for item in value.values():
                walk(item)

    walk(document.get("resource"))
    return resolved


def prepare_document(document: Any) -> tuple[dict[str, Any], list[str]]:
    """The document as checkov should see it, and notes on what was changed."""
    if not isinstance(document, dict):
        raise ValueError("the top level is not a JSON object")
    cleaned, nulls = strip_nulls(document)
    notes = []
    if nulls:
        notes.append(f"stripped {nulls} explicit null(s)")
    cleaned, policies = parse_policy_strings(cleaned)
    if policies:
        notes.append(f"parsed {policies} policy document(s) written as JSON strings")
    federated = resolve_oidc_principals(cleaned)
    if federated:
        notes.append(f"resolved {federated} Federated principal(s) to their OIDC provider's ARN")
    terraform = cleaned.get("terraform")
    if isinstance(terraform, dict) and "required_version" in terraform:
        del terraform["required_version"]
        notes.append("removed terraform.required_version (checkov 3.3 cannot parse it: issue 7454)")
    return cleaned, notes


_INDENT_BLOCK, _INDENT_TYPE, _INDENT_NAME = 2, 4, 6
_DECODER = json.JSONDecoder()


def _object_key(text: str) -> str | None:
    """The key of a line ``"key": {`` (JSON-escaped keys decoded), or None if the line is not an object member
    that opens an object."""
    if not text.startswith('"'):
        return None
    try:
        key, end = _DECODER.raw_decode(text)
    except ValueError:
        return None
    rest = text[end:].lstrip()
    if not rest.startswith(":") or not rest[1:].lstrip().startswith("{"):
        return None
    return key if isinstance(key, str) else None


def resource_lines(text: str) -> dict[int, str]:
    """Line number -> ``type.name`` for every resource (and ``data.type.name`` for every data source) of a
    JSON document written with two-space indentation. Other layouts give an empty map."""
    index: dict[int, str] = {}
    block: str | None = None
    resource_type: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.lstrip(" ")
        indent = len(line) - len(content)
        if indent == _INDENT_BLOCK:
            key = _object_key(content)
            block = key if key in ("resource", "data") else None
            resource_type = None
        elif block and indent == _INDENT_TYPE:
            resource_type = _object_key(content)
        elif block and resource_type and indent == _INDENT_NAME:
            name = _object_key(content)
            if name and name != "//":
                prefix = "data." if block == "data" else ""
                index[number] = f"{prefix}{resource_type}.{name}"
    return index


def _construct_paths(document: dict[str, Any]) -> dict[str, str]:
    paths = {}
    for block, prefix in (("resource", ""), ("data", "data.")):
        for resource_type, resources in (document.get(block) or {}).items():
            if not isinstance(resources, dict):
                continue
            for name, config in resources.items():
                metadata = config.get("//", {}).get("metadata", {}) if isinstance(config, dict) else {}
                if isinstance(metadata, dict) and isinstance(metadata.get("path"), str):
                    paths[f"{prefix}{resource_type}.{name}"] = metadata["path"]
    return paths


def _addresses(document: dict[str, Any]) -> list[str]:
    return [f"{prefix}{resource_type}.{name}"
            for block, prefix in (("resource", ""), ("data", "data."))
            for resource_type, resources in (document.get(block) or {}).items() if isinstance(resources, dict)
            for name in resources if name != "//"]


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def scan_folder_name(stack: Stack, text: str) -> str:
    """The scratch folder of a prepared stack: file-system safe whatever the stack is called, and the same for
    the same stack and content (folders gated together share the scan of a stack they have in common)."""
    digest = hashlib.sha256(f"{stack.name}\n{text}".encode()).hexdigest()[:16]
    return f"{_UNSAFE.sub('_', stack.name)}-{digest}"


def prepare(stack: Stack, scan_root: Path, cache: dict[str, PreparedStack] | None = None) -> PreparedStack:
    """Copy a stack's JSON, prepared, to ``<scan_root>/<folder>/cdk.tf.json`` (kept when an identical copy is
    there already). ``cache`` (stack name and file content -> prepared stack) saves preparing the same file of
    several gated folders twice. Raises GateError if the stack's file is missing or is not JSON."""
    try:
        original = stack.source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GateError(f"stack {stack.name}: {stack.source} does not exist") from None
    except OSError as error:
        raise GateError(f"stack {stack.name}: cannot read {stack.source}: {error}") from None
    key = hashlib.sha256(f"{stack.name}\n{original}".encode()).hexdigest()
    if cache is not None and key in cache:
        return replace(cache[key], stack=stack)
    prepared = _prepare(stack, scan_root, original)
    if cache is not None:
        cache[key] = prepared
    return prepared


def _prepare(stack: Stack, scan_root: Path, original: str) -> PreparedStack:
    try:
        document, notes = prepare_document(json.loads(original))
    except ValueError as error:
        raise GateError(f"stack {stack.name}: {stack.source} is not valid cdktf JSON: {error}") from None
    text = json.dumps(document, indent=2) + "\n"
    folder = scan_root / scan_folder_name(stack, text)
    scan_file = folder / "cdk.tf.json"
    if not scan_file.is_file():
        folder.mkdir(parents=True)
        scan_file.write_text(text, encoding="utf-8")
    return PreparedStack(
        stack=stack, scan_file=scan_file, scan_lines=resource_lines(text),
        source_lines={address: line for line, address in resource_lines(original).items()},
        construct_paths=_construct_paths(document), addresses=_addresses(document), notes=notes,
        document=document)


#: Resources whose text is scanned for secrets by checkov's secrets framework, and the attributes that hold it.
SECRET_SCAN_ATTRIBUTES = {"helm_release": ("values", "set", "set_sensitive"),
                          "kubernetes_secret_v1": ("data", "string_data", "binary_data"),
                          "kubernetes_secret": ("data", "string_data", "binary_data")}


def _secret_scan_text(resource_type: str, attribute: str, value: Any) -> list[str]:
    """YAML documents to scan: each values document as written, the other attributes dumped as YAML."""
    if resource_type == "helm_release" and attribute == "values":
        return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
    return [json.dumps({attribute: value}, indent=2)]


def write_secret_scan_files(prepared: PreparedStack, root: Path) -> dict[str, str]:
    """Write the Helm values and Kubernetes Secret data of a prepared stack as separate files under
    ``<root>/<scan folder>/`` (the secrets framework scans text files line by line, and a values document embedded
    in one JSON string would be one line); returns file name -> the resource's ``type.name``."""
    folder = root / prepared.scan_file.parent.name
    folder.mkdir(parents=True, exist_ok=True)
    index = {}
    for resource_type, attributes in SECRET_SCAN_ATTRIBUTES.items():
        for name, body in sorted(((prepared.document.get("resource") or {}).get(resource_type) or {}).items()):
            texts = [t for a in attributes if a in body for t in _secret_scan_text(resource_type, a, body[a])]
            for number, text in enumerate(texts):
                file_name = f"{len(index):04d}-{_UNSAFE.sub('_', name)[:80]}-{number}.yaml"
                (folder / file_name).write_text(text, encoding="utf-8")
                index[file_name] = f"{resource_type}.{name}"
    return index
