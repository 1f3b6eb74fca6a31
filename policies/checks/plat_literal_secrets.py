"""No secret is written literally into a Helm release's values or a Kubernetes Secret resource.

Values and Secret data land in cdk.tf.json, the repository, every plan and the CI logs. The platform keeps secrets
in Secrets Manager and brings them into the cluster with External Secrets; a value that must come from Terraform
(Linkerd's issuer key) is a ``set_sensitive`` entry referencing the resource that makes it. checkov's secrets
framework (run by the gate over the same values) finds well-known credential formats; this check finds a literal
behind a key that names a secret, whatever its format.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml
from checkov.common.models.enums import CheckCategories
from plat_common import PlatformCheck, blocks, is_set, mapping, scalar, scalars

#: libyaml's parser where PyYAML has it: the values of every release are parsed, ten times faster than in Python.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
HELM_RELEASE = ["helm_release"]
KUBERNETES_SECRETS = ["kubernetes_secret_v1", "kubernetes_secret"]
#: Key names that hold a secret (compared lower-case, without '-' and '_').
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|apikey|privatekey|accesskey|clientsecret|keypem|"
                         r"credential|webhookurl|routingkey)")
#: Key names that hold the NAME of a secret, of a key inside one or of the file it is mounted as, never the
#: secret itself.
_POINTER_KEY = re.compile(r"^(existing.*|.*(passwordkey|secretkey|tokenkey|usernamekey|secretname|secretref|"
                          r"secretkeyref|secretstore|secretstoreref|secrettype|secrets|file|path))$")
#: Values that are not secrets although a key names one, each with its reason.
NOT_SECRETS = {
    # the in-cluster vLLM endpoint ignores the API key, and OpenAI client libraries refuse an empty one
    "in-cluster",
}
_TEMPLATE = re.compile(r"\{\{.*\}\}|\$\{.+\}", re.DOTALL)


def _normalized(key: str) -> str:
    return re.sub(r"[-_]", "", key.split("/")[-1]).lower()


def _literal(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and not _TEMPLATE.search(value) \
        and value.strip() not in NOT_SECRETS


def _secret_values(value: Any, path: str = "") -> Iterator[str]:
    """Paths of literal values behind secret-named keys, and of literal data in Secret manifests."""
    if isinstance(value, dict):
        if value.get("kind") == "Secret":
            for field in ("data", "stringData"):
                for key, item in (value.get(field) or {}).items():
                    if _literal(item):
                        yield f"{path}.{field}.{key}"
        for key, item in value.items():
            key = str(key)
            if key in ("labels", "annotations"):
                continue
            name = _normalized(key)
            if _SECRET_KEY.search(name) and not _POINTER_KEY.match(name) and _literal(item):
                yield f"{path}.{key}"
            yield from _secret_values(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _secret_values(item, f"{path}[{index}]")


class HelmValuesHoldNoLiteralSecret(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_29", name="Helm releases hold no literal secret in values, set or set_sensitive",
            why="a literal in values is in the repository, every plan and the CI logs for ever: anyone who can read "
                "the code has the credential",
            resources=HELM_RELEASE, categories=[CheckCategories.SECRETS])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        for number, text in enumerate(scalars(conf, "values"), start=1):
            try:
                document = yaml.load(text, Loader=_YAML_LOADER) if isinstance(text, str) else None
            except yaml.YAMLError:
                continue
            for path in _secret_values(document):
                yield f"values #{number}: {path.lstrip('.')} is a literal secret"
        for entry in blocks(conf, "set"):
            name = str(scalar(entry, "name", ""))
            normalized = _normalized(name.split(".")[-1])
            if _SECRET_KEY.search(normalized) and not _POINTER_KEY.match(normalized) \
                    and _literal(scalar(entry, "value")):
                yield f"set {name} is a literal secret"
        for entry in blocks(conf, "set_sensitive"):
            if _literal(scalar(entry, "value")):
                yield f"set_sensitive {scalar(entry, 'name')} is a literal, not a reference to what makes it"


class KubernetesSecretHoldsNoLiteral(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_30", name="Kubernetes Secret resources take their data from references, never literals",
            why="a literal Secret value is in the repository, every plan and the CI logs; External Secrets or a "
                "reference to the resource that makes the value keeps it out",
            resources=KUBERNETES_SECRETS, categories=[CheckCategories.SECRETS])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        for field in ("data", "string_data", "binary_data"):
            values = mapping(conf, field)
            if values is None:
                continue
            for key, value in sorted(values.items()):
                if is_set(value) and _literal(value):
                    yield f"{field}.{key} is a literal"


HelmValuesHoldNoLiteralSecret()
KubernetesSecretHoldsNoLiteral()
