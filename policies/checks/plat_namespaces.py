"""Namespaces decide about the Linkerd mesh explicitly, and application namespaces are meshed with mTLS enforced.

How the platform writes namespaces (modules/common/kubernetes_objects.py from platform_config/cluster_objects.py):

- application namespaces (inference, training, agentic, mlops): Pod Security ``restricted`` or ``baseline``,
  ``linkerd.io/inject: enabled`` and ``config.linkerd.io/default-inbound-policy: all-authenticated``;
- system namespaces (gpu-operator, monitoring, logging, linkerd, linkerd-cni, argocd, external-secrets,
  observability, kueue-system, kubeflow-system): ``linkerd.io/inject: disabled`` and the label
  ``config.linkerd.io/admission-webhooks: disabled``, which keeps Linkerd's proxy injector out of the namespace
  altogether (a pod annotation cannot opt back in). Some of them enforce ``restricted`` Pod Security too, so the
  Pod Security level alone does not tell an application namespace from a system one.

Whether each meshed namespace also has its default-deny NetworkPolicy is the graph check CKV2_PLAT_5.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories
from plat_common import PlatformCheck, metadata_maps

NAMESPACES = ["kubernetes_namespace_v1", "kubernetes_namespace"]
INJECT = "linkerd.io/inject"
INBOUND_POLICY = "config.linkerd.io/default-inbound-policy"
WEBHOOKS = "config.linkerd.io/admission-webhooks"
ENFORCE = "pod-security.kubernetes.io/enforce"
#: Pod Security levels of namespaces that run the platform's workloads (privileged is for node agents).
APPLICATION_LEVELS = ("restricted", "baseline")
REQUIRED_INBOUND_POLICY = "all-authenticated"


class NamespaceMeshDecision(PlatformCheck):
    def __init__(self) -> None:
        super().__init__(
            id="CKV_PLAT_17",
            name="Namespaces set linkerd.io/inject explicitly; application namespaces are meshed with "
                 "default-inbound-policy all-authenticated",
            why="an application namespace left out of the mesh, or meshed without all-authenticated, accepts "
                "plaintext traffic from any pod: no mTLS, no workload identity; a namespace without a decision "
                "silently follows whatever the mesh default is",
            resources=NAMESPACES, categories=[CheckCategories.KUBERNETES])

    def problems(self, conf: dict[str, Any]) -> Iterator[str]:
        annotations, labels = metadata_maps(conf)
        if annotations is None or labels is None:
            yield "metadata.annotations or metadata.labels is one expression: the mesh decision cannot be verified"
            return
        inject = annotations.get(INJECT)
        policy = annotations.get(INBOUND_POLICY)
        enforce = labels.get(ENFORCE)
        webhooks = labels.get(WEBHOOKS)
        if inject not in ("enabled", "disabled"):
            found = "missing" if inject is None else f"{inject!r}"
            yield (f"annotation {INJECT} is {found}: set it to 'enabled' (meshed) or 'disabled' (system namespace "
                   "kept out of the mesh)")
        application = enforce in APPLICATION_LEVELS and policy is not None
        if application and inject != "enabled":
            yield (f"application namespace (Pod Security {enforce}, {INBOUND_POLICY} {policy}) is not meshed: "
                   f"{INJECT} must be 'enabled'")
        if (application or inject == "enabled") and policy != REQUIRED_INBOUND_POLICY:
            found = "missing" if policy is None else f"{policy!r}"
            yield f"annotation {INBOUND_POLICY} is {found}, not {REQUIRED_INBOUND_POLICY!r}"
        if inject == "enabled" and webhooks == "disabled":
            yield (f"{INJECT} is 'enabled' but the label {WEBHOOKS}=disabled keeps the proxy injector out: pods "
                   "start without a proxy")
        if inject == "disabled" and webhooks != "disabled":
            yield (f"{INJECT} is 'disabled' without the label {WEBHOOKS}=disabled that marks a system namespace "
                   "kept out of the mesh (an application namespace must be meshed instead)")


NamespaceMeshDecision()
