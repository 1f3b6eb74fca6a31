"""Workloads that run the platform's own images are delivered by Argo CD, with their image tags read from Git.

The manifests are generated here like every other workload's (guardrails, placement, the scheduling check), but
they reach the cluster as one Argo CD Application with two sources:

- the manifests chart of the catalogue (``platform-resources``, bedag ``raw``), whose ``templates`` are rendered
  with Helm's ``tpl``: an image of the platform's registry is written
  ``<registry>/<repository>:{{ dig "<repository>" "<default tag>" (.Values.imageTags | default dict) }}``;
- the GitOps repository, as the value file ``<gitops.path>/image-tags.yaml`` (``imageTags: {<repository>: <tag>}``).

The image workflow writes a new tag into that file (a pull request, or a commit in environments whose
``image_updates`` is ``direct``); Argo CD sees the commit and syncs. The environment file's ``image_tag`` is the
tag used until the file names one.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from platform_config.argocd_settings import ROOT_PROJECT
from platform_config.helm_values import chart_catalogue
from platform_config.images import platform_repository, registry, tag_template

#: The value file in the environment's folder of the GitOps repository, and the map in it.
IMAGE_TAGS_FILE = "image-tags.yaml"
#: The name the Application gives its GitOps source, for ``$<ref>/...`` value files.
GITOPS_REF = "gitops"
MANIFESTS_CHART = "platform-resources"
ARGOCD_NAMESPACE = "argocd"
#: Deleting the Application deletes what it deployed (Argo CD's cascading finalizer).
CASCADE_FINALIZER = "resources-finalizer.argocd.argoproj.io"

Manifest = dict[str, Any]

#: The Applications the workloads layer declares for the groups of manifests that run the platform's images:
#: name -> (manifest group, namespace of what they deploy).
IMAGE_APPLICATIONS = {"inference-servers": ("inference", "inference"), "agent-runtimes": ("agents", "agentic")}


def image_tags_path(gitops_path: str) -> str:
    """The tags file of an environment, relative to the root of the GitOps repository."""
    return f"{gitops_path.strip('/')}/{IMAGE_TAGS_FILE}"


def _templated(value: Any, host: str) -> Any:
    """``value`` with every image of the registry ``host`` made to read its tag from the tags file."""
    if isinstance(value, dict):
        return {k: (_image(v, host) if k == "image" and isinstance(v, str) else _templated(v, host))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_templated(v, host) for v in value]
    return value


def _image(image: str, host: str) -> str:
    match = re.fullmatch(rf"{re.escape(host)}/(?P<repository>[^:@]+):(?P<tag>[\w.-]+)", image)
    # Upstream images in the pull-through cache keep their locked pin: the tags file names only images built here.
    if not match or platform_repository(image, registry=host) is None:
        return image
    return f"{host}/{match['repository']}:{tag_template(match['repository'], match['tag'])}"


def _text(manifest: Manifest) -> str:
    return yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False, width=1000)


def image_application(*, name: str, namespace: str, manifests: list[Manifest], account_id: str, region: str,
                      repository_url: str, revision: str, gitops_path: str) -> Manifest:
    """The Argo CD Application that deploys ``manifests`` into ``namespace``, images of the account's registry
    tagged from ``<gitops_path>/image-tags.yaml`` at ``revision`` of ``repository_url``."""
    pin = chart_catalogue()[MANIFESTS_CHART]
    host = registry(account_id, region)
    templates = [_text(_templated(manifest, host)) for manifest in manifests]
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE, "finalizers": [CASCADE_FINALIZER]},
        "spec": {
            "project": ROOT_PROJECT,
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "sources": [
                {"repoURL": pin.repository, "chart": pin.chart, "targetRevision": pin.version,
                 "helm": {"releaseName": name,
                          "valueFiles": [f"${GITOPS_REF}/{image_tags_path(gitops_path)}"],
                          # Until the first tag is written the file may not exist: the default tags apply.
                          "ignoreMissingValueFiles": True,
                          "valuesObject": {"templates": templates}}},
                {"repoURL": repository_url, "targetRevision": revision, "ref": GITOPS_REF},
            ],
            # Git is the only way to change what runs: a manual change is reverted, a removed object deleted.
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True},
                           "retry": {"limit": 5, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "3m"}}},
        },
    }
