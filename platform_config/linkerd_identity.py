"""Linkerd's identity from cert-manager and trust-manager, so that no private key passes through Terraform.

The trust anchor (an ECDSA P-256 CA made once outside Terraform) is a platform secret without a value in the code:
Secrets Manager holds it and External Secrets writes it as a ``kubernetes.io/tls`` Secret into cert-manager's
namespace, which is where a ClusterIssuer reads its CA from. From there:

- a ClusterIssuer of type CA signs Linkerd's identity issuer, a Certificate cert-manager renews before it expires,
  into the Secret the control plane reads when ``identity.issuer.scheme`` is ``kubernetes.io/tls``;
- a trust-manager Bundle copies the public certificate of every anchor Secret it selects into the ConfigMap the
  control plane and the proxy injector read when ``identity.externalCA`` is true.
"""

from __future__ import annotations

from typing import Any

from platform_config.data_layer import platform_secrets
from platform_config.helm_values import chart_catalogue

Manifest = dict[str, Any]

#: The trust anchor's entry in ``data/secrets.yaml``.
TRUST_ANCHOR_SECRET = "linkerd-trust-anchor"
#: Names the linkerd-control-plane chart fixes (templates/identity.yaml at edge-26.8.3): the identity controller
#: mounts this Secret of its own namespace as its issuer, and this ConfigMap (this key) as the trust roots.
ISSUER_SECRET = "linkerd-identity-issuer"
TRUST_ROOTS_CONFIGMAP = "linkerd-identity-trust-roots"
TRUST_ROOTS_KEY = "ca-bundle.crt"
ISSUER_SCHEME = "kubernetes.io/tls"
TRUST_DOMAIN = "cluster.local"
CLUSTER_ISSUER = "linkerd-trust-anchor"
#: The issuer lives two days and is renewed a day before it expires (Linkerd's cert-manager guide): a renewal that
#: fails leaves a day to notice, and every renewal exercises the rotation. Proxies' own certificates last 24h.
ISSUER_DURATION = "48h0m0s"
ISSUER_RENEW_BEFORE = "25h0m0s"

CERT_MANAGER_API = "cert-manager.io/v1"
TRUST_MANAGER_API = "trust.cert-manager.io/v1alpha1"


def control_plane_namespace() -> str:
    return chart_catalogue()["linkerd-control-plane"].namespace


def trust_anchor_secret_name() -> str:
    return platform_secrets()[TRUST_ANCHOR_SECRET].kubernetes_secret.name


def trust_anchor_labels() -> dict[str, str]:
    """The labels the Bundle selects anchors by: the synced anchor carries them, and so does the Secret that keeps
    the previous anchor trusted during a rotation."""
    labels = platform_secrets()[TRUST_ANCHOR_SECRET].kubernetes_secret.labels
    if not labels:
        raise ValueError(f"data/secrets.yaml: {TRUST_ANCHOR_SECRET}.kubernetes_secret.labels: the trust-manager "
                         "Bundle selects anchors by label (allowed: at least one label)")
    return dict(labels)


def cluster_issuer() -> Manifest:
    return {"apiVersion": CERT_MANAGER_API, "kind": "ClusterIssuer", "metadata": {"name": CLUSTER_ISSUER},
            "spec": {"ca": {"secretName": trust_anchor_secret_name()}}}


def issuer_certificate() -> Manifest:
    """Linkerd's identity issuer: an intermediate CA (Linkerd requires ECDSA P-256), a new key at every renewal."""
    common_name = f"identity.linkerd.{TRUST_DOMAIN}"
    return {"apiVersion": CERT_MANAGER_API, "kind": "Certificate",
            "metadata": {"name": ISSUER_SECRET, "namespace": control_plane_namespace()},
            "spec": {"secretName": ISSUER_SECRET, "commonName": common_name, "dnsNames": [common_name],
                     "isCA": True, "duration": ISSUER_DURATION, "renewBefore": ISSUER_RENEW_BEFORE,
                     "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                     "usages": ["cert sign", "crl sign", "server auth", "client auth"],
                     "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": CLUSTER_ISSUER}}}


def trust_roots_bundle() -> Manifest:
    """Only the anchors' certificates (``tls.crt``), only into the control plane's namespace."""
    return {"apiVersion": TRUST_MANAGER_API, "kind": "Bundle", "metadata": {"name": TRUST_ROOTS_CONFIGMAP},
            "spec": {"sources": [{"secret": {"selector": {"matchLabels": trust_anchor_labels()}, "key": "tls.crt"}}],
                     "target": {"configMap": {"key": TRUST_ROOTS_KEY},
                                "namespaceSelector": {"matchLabels": {
                                    "kubernetes.io/metadata.name": control_plane_namespace()}}}}}


def identity_manifests() -> list[Manifest]:
    return [cluster_issuer(), issuer_certificate(), trust_roots_bundle()]


def control_plane_values() -> dict[str, Any]:
    """The linkerd-control-plane values that make it read the issuer and the trust roots from the cluster."""
    return {"identityTrustDomain": TRUST_DOMAIN,
            "identity": {"externalCA": True, "issuer": {"scheme": ISSUER_SCHEME}}}
