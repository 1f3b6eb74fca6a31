"""Helpers to read synthesized Terraform JSON in tests."""

from __future__ import annotations

import re
from pathlib import Path

#: The environments of the repository, one per file: tests parametrized per environment cover a new file as well.
ENVIRONMENT_DIR = Path(__file__).resolve().parent.parent / "environments"
ENVIRONMENT_NAMES = sorted(path.stem for path in ENVIRONMENT_DIR.glob("*.yaml"))


def resources(stack: dict, resource_type: str) -> dict[str, dict]:
    """The resources of one type, by their Terraform name."""
    return stack.get("resource", {}).get(resource_type, {})


def by_path(stack: dict, resource_type: str) -> dict[str, dict]:
    """The resources of one type, by construct path below the stack (e.g. ``pool-cpu/node-group``)."""
    found = {}
    for body in resources(stack, resource_type).values():
        path = body["//"]["metadata"]["path"]
        found[path.split("/", 1)[1]] = body
    return found


def one(stack: dict, resource_type: str) -> dict:
    items = list(resources(stack, resource_type).values())
    assert len(items) == 1, f"expected one {resource_type}, found {len(items)}"
    return items[0]


def reference_to(resource_type: str, attribute: str) -> re.Pattern:
    """A pattern matching a Terraform reference to ``<resource_type>.<any name>.<attribute>``."""
    return re.compile(rf"^\$\{{{re.escape(resource_type)}\.[\w-]+\.{re.escape(attribute)}\}}$")


# --- kubernetes-provider resources back to Kubernetes manifests, to validate what is actually synthesized ---
KIND_OF = {"kubernetes_namespace_v1": ("v1", "Namespace"), "kubernetes_resource_quota_v1": ("v1", "ResourceQuota"),
           "kubernetes_limit_range_v1": ("v1", "LimitRange"),
           "kubernetes_network_policy_v1": ("networking.k8s.io/v1", "NetworkPolicy"),
           "kubernetes_storage_class_v1": ("storage.k8s.io/v1", "StorageClass")}
#: Maps whose keys are data (label names, resource names), not field names.
_DATA_MAPS = {"labels", "annotations", "match_labels", "hard", "parameters", "default", "default_request", "max",
              "min"}
_RENAMES = {"limit": "limits", "storage_provisioner": "provisioner"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _to_kubernetes(value, field: str = ""):
    if isinstance(value, dict):
        if field in _DATA_MAPS:
            return dict(value)
        return {_camel(_RENAMES.get(k, k)): _to_kubernetes(v, k) for k, v in value.items() if k != "//"}
    if isinstance(value, list):
        return [_to_kubernetes(v, field) for v in value]
    if field == "port" and isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def namespace_names(stack: dict) -> dict[str, str]:
    """Reference to a namespace resource's name -> the name, for the namespaces of a stack."""
    return {f"${{kubernetes_namespace_v1.{address}.metadata[0].name}}": body["metadata"]["name"]
            for address, body in resources(stack, "kubernetes_namespace_v1").items()}


def manifest_of(resource_type: str, body: dict, stack: dict | None = None) -> dict:
    """The Kubernetes manifest a kubernetes-provider resource describes (namespace references of ``stack``
    resolved to names)."""
    api_version, kind = KIND_OF[resource_type]
    converted = _to_kubernetes({k: v for k, v in body.items() if k not in ("//", "depends_on")})
    namespace = converted["metadata"].get("namespace")
    if stack is not None and namespace is not None:
        converted["metadata"]["namespace"] = namespace_names(stack).get(namespace, namespace)
    return {"apiVersion": api_version, "kind": kind, **converted}


# --- Argo CD Applications whose manifests read image tags from the GitOps repository ---
_TAG_TEMPLATE = re.compile(r'\{\{ dig "(?P<repository>[^"]+)" "(?P<default>[^"]+)" \(\.Values\.imageTags \| default '
                           r'dict\) \}\}')


def render_image_tags(text: str, tags: dict[str, str] | None = None) -> str:
    """What Helm's ``tpl`` makes of a template's tag expressions, given the tags file's ``imageTags`` map."""
    return _TAG_TEMPLATE.sub(lambda m: (tags or {}).get(m["repository"], m["default"]), text)


def application_manifests(application: dict, tags: dict[str, str] | None = None) -> list[dict]:
    """The manifests an Application built by platform_config.gitops deploys, rendered with ``tags``."""
    import yaml

    [chart] = [s for s in application["spec"]["sources"] if "chart" in s]
    return [yaml.safe_load(render_image_tags(text, tags)) for text in chart["helm"]["valuesObject"]["templates"]]
