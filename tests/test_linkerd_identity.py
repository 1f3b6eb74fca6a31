"""No private key in any Terraform state, and Linkerd's identity wired as the receiving systems read it.

Each rule is a function over one synthesized stack that returns its problems. Every test runs the rule on the
synthesized output (no problem) and on a copy with the defect put back (the problem is reported), so a rule that
cannot fail, fails.

What the receiving systems do, at the pinned charts:
- the linkerd-control-plane chart (templates/identity.yaml at edge-26.8.3) mounts the issuer from the Secret
  ``linkerd-identity-issuer`` of its own namespace when ``identity.issuer.scheme`` is ``kubernetes.io/tls``, and
  the trust roots from key ``ca-bundle.crt`` of the ConfigMap ``linkerd-identity-trust-roots`` when
  ``identity.externalCA`` is true (otherwise it renders both from values, which is where private keys came from);
  the issuer's name must be ``identity.linkerd.<trust domain>``, and Linkerd accepts ECDSA P-256 only;
- cert-manager reads a ClusterIssuer's CA Secret (``tls.crt``, ``tls.key``) from its cluster resource namespace
  (its own namespace unless ``clusterResourceNamespace`` is set) and renews a Certificate ``renewBefore`` its
  expiry;
- trust-manager reads Bundle sources from its trust namespace (``app.trust.namespace``, default cert-manager) and
  writes a ConfigMap named like the Bundle into the namespaces its selector picks;
- Helm installs a release only after the releases it depends on are ready, and a custom resource only once its CRD
  (and its validating webhook) exists.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable

import pytest
import yaml

from tests_support import resources

ENVIRONMENTS = ["dev", "staging", "prod"]

CHART_ISSUER_SECRET = "linkerd-identity-issuer"
CHART_TRUST_ROOTS = "linkerd-identity-trust-roots"
CHART_TRUST_ROOTS_KEY = "ca-bundle.crt"
DEFAULT_TRUST_DOMAIN = "cluster.local"
TRUST_MANAGER_DEFAULT_TRUST_NAMESPACE = "cert-manager"

#: Resource types whose Terraform state holds private key material, as an argument or as a computed attribute.
PRIVATE_KEY_TYPES = {
    "tls_private_key": "private_key_pem (generated)",
    "tls_self_signed_cert": "private_key_pem (argument)",
    "tls_cert_request": "private_key_pem (argument)",
    "tls_locally_signed_cert": "ca_private_key_pem (argument)",
    "acme_registration": "account_key_pem (argument)",
    "acme_certificate": "private_key_pem (computed)",
    "aws_iot_certificate": "private_key (computed)",
    "aws_lightsail_key_pair": "private_key (computed)",
    "aws_secretsmanager_secret_version": "secret_string (argument)",
    "kubernetes_secret": "data (argument)",
    "kubernetes_secret_v1": "data (argument)",
}
#: Arguments that put a value into the state when they are set at all.
PRIVATE_KEY_ARGUMENTS = {"aws_acm_certificate": "private_key", "helm_release": "set_sensitive"}


# --- reading the synthesized platform stack ---

def _releases(stack: dict) -> dict[str, tuple[str, dict]]:
    """Release name -> (Terraform address, body)."""
    return {body["name"]: (f"helm_release.{key}", body) for key, body in resources(stack, "helm_release").items()}


def _values(body: dict) -> dict:
    [text] = body["values"]
    return yaml.safe_load(text) or {}


def _release_of_chart(stack: dict, chart: str) -> tuple[str, dict]:
    [found] = [(address, body) for address, body in _releases(stack).values() if body["chart"] == chart]
    return found


def _raw_resources(values: dict) -> list:
    """The manifests of a raw-manifests release (``resources`` is a list there; other charts use the key for a
    container's requests and limits)."""
    items = values.get("resources")
    return items if isinstance(items, list) else []


def _manifests(stack: dict) -> list[tuple[str, dict]]:
    """Every manifest delivered through a raw-manifests release, with the release's Terraform address."""
    found = []
    for address, body in _releases(stack).values():
        for item in _raw_resources(_values(body)):
            for manifest in (yaml.safe_load_all(item) if isinstance(item, str) else [item]):
                if isinstance(manifest, dict) and "kind" in manifest:
                    found.append((address, manifest))
    return found


def _one(stack: dict, kind: str, where: Callable[[dict], bool] = lambda m: True) -> tuple[str, dict] | None:
    matches = [(address, m) for address, m in _manifests(stack) if m["kind"] == kind and where(m)]
    return matches[0] if len(matches) == 1 else None


def _depends_on(stack: dict, address: str) -> set[str]:
    """Every release address that ``address`` waits for, directly or through others."""
    bodies = {a: body for a, body in _releases(stack).values()}
    seen: set[str] = set()
    todo = list(bodies[address].get("depends_on", []))
    while todo:
        dependency = todo.pop()
        if dependency not in seen:
            seen.add(dependency)
            todo.extend(bodies.get(dependency, {}).get("depends_on", []))
    return seen


def _go_duration_seconds(text: str) -> float:
    parts = re.fullmatch(r"((?:\d+(?:\.\d+)?(?:h|m|s|ms))+)", text or "")
    if not parts:
        raise ValueError(f"not a Go duration: {text!r}")
    unit = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * unit[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text))


# --- the rules ---

def private_key_holders(stack: dict) -> list[str]:
    problems = [f"{kind}.{name}: its state holds {what}"
                for kind, what in PRIVATE_KEY_TYPES.items() for name in resources(stack, kind)]
    problems += [f"{kind}.{name}: {argument} is set, so its value is kept in the state"
                 for kind, argument in PRIVATE_KEY_ARGUMENTS.items()
                 for name, body in resources(stack, kind).items() if body.get(argument)]
    problems += [f"data.{kind}: reads key material into the state"
                 for kind in stack.get("data", {}) if kind.startswith("tls_")]
    problems += [f"provider {name}: the tls provider exists to make keys in Terraform"
                 for name in [*stack.get("provider", {}), *stack.get("terraform", {}).get("required_providers", {})]
                 if name == "tls"]
    return problems


def linkerd_identity_problems(stack: dict) -> list[str]:
    """The control plane reads exactly the Secret and ConfigMap that cert-manager and trust-manager write."""
    problems = []
    _, control_plane = _release_of_chart(stack, "linkerd-control-plane")
    linkerd_namespace = control_plane["namespace"]
    linkerd = _values(control_plane)
    identity = linkerd.get("identity", {})
    if identity.get("externalCA") is not True:
        problems.append("linkerd-control-plane: identity.externalCA is not true, so the chart renders the trust "
                        "roots ConfigMap from values")
    if identity.get("issuer", {}).get("scheme") != "kubernetes.io/tls":
        problems.append("linkerd-control-plane: identity.issuer.scheme is not kubernetes.io/tls, so the chart "
                        "renders the issuer Secret from values")
    if linkerd.get("identityTrustAnchorsPEM") or identity.get("issuer", {}).get("tls"):
        problems.append("linkerd-control-plane: certificates or keys are given as values")

    _, cert_manager = _release_of_chart(stack, "cert-manager")
    anchor_namespace = _values(cert_manager).get("clusterResourceNamespace") or cert_manager["namespace"]
    _, trust_manager = _release_of_chart(stack, "trust-manager")
    trust_namespace = (_values(trust_manager).get("app", {}).get("trust", {}).get("namespace")
                       or TRUST_MANAGER_DEFAULT_TRUST_NAMESPACE)

    certificate = _one(stack, "Certificate", lambda m: m["spec"].get("secretName") == CHART_ISSUER_SECRET)
    if certificate is None:
        return [*problems, f"no single Certificate writes the Secret {CHART_ISSUER_SECRET} the chart reads"]
    spec = certificate[1]["spec"]
    if certificate[1]["metadata"].get("namespace") != linkerd_namespace:
        problems.append(f"Certificate {CHART_ISSUER_SECRET}: not in the control plane's namespace {linkerd_namespace}")
    trust_domain = linkerd.get("identityTrustDomain") or DEFAULT_TRUST_DOMAIN
    if spec.get("commonName") != f"identity.linkerd.{trust_domain}":
        problems.append(f"Certificate {CHART_ISSUER_SECRET}: commonName is not identity.linkerd.{trust_domain}")
    issuer_ref = spec.get("issuerRef", {})
    issuer = _one(stack, "ClusterIssuer", lambda m: m["metadata"]["name"] == issuer_ref.get("name"))
    if issuer_ref.get("kind") != "ClusterIssuer" or issuer is None:
        return [*problems, f"Certificate {CHART_ISSUER_SECRET}: its issuerRef names no ClusterIssuer delivered here"]
    anchor_secret = issuer[1]["spec"].get("ca", {}).get("secretName")
    anchor = _one(stack, "ExternalSecret", lambda m: m["spec"]["target"]["name"] == anchor_secret
                  and m["metadata"]["namespace"] == anchor_namespace)
    if anchor is None:
        return [*problems, f"ClusterIssuer: no ExternalSecret writes its CA Secret {anchor_secret} into cert-manager's "
                           f"cluster resource namespace {anchor_namespace}"]
    template = anchor[1]["spec"]["target"].get("template", {})
    if template.get("type") != "kubernetes.io/tls":
        problems.append(f"ExternalSecret {anchor_secret}: the Secret is not of type kubernetes.io/tls")

    bundle = _one(stack, "Bundle", lambda m: m["metadata"]["name"] == CHART_TRUST_ROOTS)
    if bundle is None:
        return [*problems, f"no Bundle writes the ConfigMap {CHART_TRUST_ROOTS} the chart reads"]
    target = bundle[1]["spec"].get("target", {})
    if target.get("configMap", {}).get("key") != CHART_TRUST_ROOTS_KEY:
        problems.append(f"Bundle: the ConfigMap key is not {CHART_TRUST_ROOTS_KEY}")
    if target.get("namespaceSelector", {}).get("matchLabels") != {"kubernetes.io/metadata.name": linkerd_namespace}:
        problems.append(f"Bundle: the ConfigMap is not written into {linkerd_namespace} (only)")
    anchor_labels = template.get("metadata", {}).get("labels", {})
    sources = bundle[1]["spec"].get("sources", [])
    if trust_namespace != anchor_namespace or not any(
            source.get("secret", {}).get("key") == "tls.crt" and (
                source["secret"].get("name") == anchor_secret
                or source["secret"].get("selector", {}).get("matchLabels", {None: None}).items()
                <= anchor_labels.items())
            for source in sources):
        problems.append(f"Bundle: no source reads tls.crt of the anchor Secret {anchor_namespace}/{anchor_secret} "
                        f"(trust-manager reads sources from {trust_namespace})")
    if any(source.get("secret", {}).get("key") == "tls.key" or source.get("secret", {}).get("includeAllKeys")
           for source in sources):
        problems.append("Bundle: a source would copy the anchor's private key into ConfigMaps")
    return problems


def issuer_certificate_problems(stack: dict) -> list[str]:
    found = _one(stack, "Certificate", lambda m: m["spec"].get("secretName") == CHART_ISSUER_SECRET)
    if found is None:
        return [f"no single Certificate writes {CHART_ISSUER_SECRET}"]
    spec = found[1]["spec"]
    problems = []
    key = spec.get("privateKey", {})
    if (key.get("algorithm"), key.get("size")) != ("ECDSA", 256):
        problems.append(f"issuer key is {key.get('algorithm')} {key.get('size')}: Linkerd accepts ECDSA P-256 only")
    if key.get("rotationPolicy", "Always") != "Always":
        problems.append("issuer key is kept across renewals (rotationPolicy Never)")
    if spec.get("isCA") is not True:
        problems.append("issuer is not a CA: it could not sign the proxies' certificates")
    try:
        duration = _go_duration_seconds(spec.get("duration", ""))
        renew_before = _go_duration_seconds(spec.get("renewBefore", ""))
    except ValueError as error:
        return [*problems, f"issuer duration/renewBefore: {error}"]
    if not 0 < renew_before < duration:
        problems.append(f"issuer renewBefore {spec['renewBefore']} is not within its duration {spec['duration']}: "
                        "cert-manager would renew it continuously or only once it has expired")
    return problems


def install_order_problems(stack: dict) -> list[str]:
    addresses = {chart: _release_of_chart(stack, chart)[0]
                 for chart in ("cert-manager", "trust-manager", "linkerd-control-plane")}
    certificate = _one(stack, "Certificate", lambda m: m["spec"].get("secretName") == CHART_ISSUER_SECRET)
    bundle = _one(stack, "Bundle", lambda m: m["metadata"]["name"] == CHART_TRUST_ROOTS)
    if certificate is None or bundle is None:
        return ["the issuer Certificate or the trust roots Bundle is missing"]
    cr_releases = {certificate[0], bundle[0]}
    issuer_name = certificate[1]["spec"].get("issuerRef", {}).get("name")
    anchor_secrets = {m["spec"].get("ca", {}).get("secretName") for _, m in _manifests(stack)
                      if m["kind"] == "ClusterIssuer" and m["metadata"]["name"] == issuer_name}
    anchor_releases = {address for address, m in _manifests(stack)
                       if m["kind"] == "ExternalSecret" and m["spec"]["target"]["name"] in anchor_secrets}
    if not anchor_releases:
        return ["no release delivers the ExternalSecret of the issuer's CA"]
    problems = []
    for cr_release in cr_releases:
        missing = {addresses["cert-manager"], addresses["trust-manager"]} - _depends_on(stack, cr_release)
        problems += [f"{cr_release} may install before {m} (its CRDs and webhook)" for m in sorted(missing)]
    if addresses["cert-manager"] not in _depends_on(stack, addresses["trust-manager"]):
        problems.append("trust-manager may install before cert-manager, which issues its webhook's certificate")
    before_control_plane = {addresses["cert-manager"], addresses["trust-manager"], *cr_releases, *anchor_releases}
    missing = before_control_plane - _depends_on(stack, addresses["linkerd-control-plane"])
    problems += [f"linkerd-control-plane may install before {m}" for m in sorted(missing)]
    return problems


# --- defects put back ---

def _edit_values(stack: dict, release: str, edit: Callable[[dict], None]) -> dict:
    changed = copy.deepcopy(stack)
    for body in resources(changed, "helm_release").values():
        if body["name"] == release:
            values = _values(body)
            edit(values)
            body["values"] = [yaml.safe_dump(values)]
    return changed


def _edit_manifest(stack: dict, kind: str, edit: Callable[[dict], None]) -> dict:
    def apply(values: dict) -> None:
        for manifest in _raw_resources(values):
            if manifest["kind"] == kind:
                edit(manifest)
    changed = copy.deepcopy(stack)
    for body in resources(changed, "helm_release").values():
        if any(m.get("kind") == kind for m in _raw_resources(_values(body))):
            changed = _edit_values(changed, body["name"], apply)
    return changed


def _identity_release(stack: dict) -> str:
    [name] = {body["name"] for body in resources(stack, "helm_release").values()
              if any(m.get("kind") == "Certificate" for m in _raw_resources(_values(body)))}
    return name


def _drop_dependency(stack: dict, release: str, dropped: str) -> dict:
    changed = copy.deepcopy(stack)
    addresses = {body["name"]: address for body, address in
                 ((b, f"helm_release.{k}") for k, b in resources(changed, "helm_release").items())}
    for body in resources(changed, "helm_release").values():
        if body["name"] == release:
            body["depends_on"] = [d for d in body.get("depends_on", []) if d != addresses[dropped]]
    return changed


# --- the tests ---

def test_no_stack_keeps_a_private_key_in_its_state(stacks):
    problems = {name: private_key_holders(stack) for name, stack in stacks.items()}
    assert {name: found for name, found in problems.items() if found} == {}


def test_the_private_key_rule_reports_the_tls_provider_and_secret_release_values_put_back(stacks):
    stack = copy.deepcopy(stacks["prod-platform"])
    stack["provider"]["tls"] = [{}]
    stack["resource"]["tls_private_key"] = {"trust-anchor-key": {"algorithm": "ECDSA", "ecdsa_curve": "P256"}}
    [release] = list(resources(stack, "helm_release").values())[:1]
    release["set_sensitive"] = [{"name": "identity.issuer.tls.keyPEM", "value": "${tls_private_key.x.pem}"}]
    problems = private_key_holders(stack)
    assert any(p.startswith("tls_private_key.trust-anchor-key") for p in problems)
    assert any("set_sensitive" in p for p in problems)
    assert any(p.startswith("provider tls") for p in problems)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_linkerd_reads_the_issuer_cert_manager_writes_and_the_roots_trust_manager_writes(stacks, env_name):
    assert linkerd_identity_problems(stacks[f"{env_name}-platform"]) == []


@pytest.mark.parametrize(("defect", "expected"), [
    (lambda s: _edit_values(s, "linkerd-control-plane", lambda v: v["identity"].update(externalCA=False)),
     "identity.externalCA"),
    (lambda s: _edit_values(s, "linkerd-control-plane", lambda v: v["identity"]["issuer"].update(
        scheme="linkerd.io/tls")), "identity.issuer.scheme"),
    (lambda s: _edit_values(s, "linkerd-control-plane", lambda v: v.update(identityTrustAnchorsPEM="PEM")),
     "given as values"),
    (lambda s: _edit_manifest(s, "Certificate", lambda m: m["spec"].update(secretName="linkerd-issuer")),
     f"writes the Secret {CHART_ISSUER_SECRET}"),
    (lambda s: _edit_manifest(s, "Certificate", lambda m: m["metadata"].update(namespace="cert-manager")),
     "not in the control plane's namespace"),
    (lambda s: _edit_manifest(s, "Bundle", lambda m: m["metadata"].update(name="linkerd-trust-roots")),
     f"writes the ConfigMap {CHART_TRUST_ROOTS}"),
    (lambda s: _edit_manifest(s, "Bundle", lambda m: m["spec"]["target"]["configMap"].update(key="ca.crt")),
     "ConfigMap key"),
    (lambda s: _edit_manifest(s, "Bundle", lambda m: m["spec"]["sources"][0]["secret"].update(
        selector={"matchLabels": {"other": "true"}})), "no source reads tls.crt"),
    (lambda s: _edit_manifest(s, "Bundle", lambda m: m["spec"]["sources"][0]["secret"].update(key="tls.key")),
     "private key into ConfigMaps"),
    (lambda s: _edit_manifest(s, "ExternalSecret", lambda m: m["metadata"].update(namespace="linkerd")
                              if m["spec"]["target"]["name"] == "linkerd-trust-anchor" else None),
     "cluster resource namespace"),
    (lambda s: _edit_values(s, "trust-manager", lambda v: v["app"]["trust"].update(namespace="trust-manager")),
     "trust-manager reads sources from trust-manager"),
])
def test_the_wiring_rule_reports_each_name_or_setting_put_back_out_of_step(stacks, defect, expected):
    problems = linkerd_identity_problems(defect(stacks["prod-platform"]))
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_the_issuer_is_an_ecdsa_p256_ca_renewed_before_it_expires(stacks, env_name):
    assert issuer_certificate_problems(stacks[f"{env_name}-platform"]) == []


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda spec: spec["privateKey"].update(algorithm="RSA", size=2048), "ECDSA P-256 only"),
    (lambda spec: spec["privateKey"].update(size=384), "ECDSA P-256 only"),
    (lambda spec: spec.update(isCA=False), "not a CA"),
    (lambda spec: spec.update(renewBefore=spec["duration"]), "not within its duration"),
    (lambda spec: spec.pop("renewBefore"), "renewBefore"),
    (lambda spec: spec["privateKey"].update(rotationPolicy="Never"), "kept across renewals"),
])
def test_the_certificate_rule_reports_a_weak_or_unrenewed_issuer(stacks, edit, expected):
    problems = issuer_certificate_problems(_edit_manifest(stacks["prod-platform"], "Certificate",
                                                          lambda m: edit(m["spec"])))
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_cert_manager_trust_manager_and_the_identity_resources_install_before_the_control_plane(stacks, env_name):
    assert install_order_problems(stacks[f"{env_name}-platform"]) == []


def test_the_order_rule_reports_a_dependency_put_back_out(stacks):
    stack = stacks["prod-platform"]
    identity = _identity_release(stack)
    without_identity = _drop_dependency(stack, "linkerd-control-plane", identity)
    assert any(f"may install before helm_release.release-{identity}" in p
               for p in install_order_problems(without_identity))
    unordered = _drop_dependency(_drop_dependency(stack, identity, "cert-manager"), identity, "trust-manager")
    assert any("(its CRDs and webhook)" in p for p in install_order_problems(unordered))
    assert any("before cert-manager" in p
               for p in install_order_problems(_drop_dependency(stack, "trust-manager", "cert-manager")))
