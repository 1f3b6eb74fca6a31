"""A Helm release of the platform: chart pinned in the catalogue, values layered from files and infrastructure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_helm.release import Release
from constructs import Construct

from platform_config.helm_values import ChartPin, chart_catalogue, release_values, values_yaml
from platform_config.images import chart_image_values

#: Seconds Helm waits for a release's resources to become ready.
DEFAULT_TIMEOUT = 600


class PlatformRelease(Construct):
    """One Helm release.

    Inputs (keyword-only):
      release: the release name, a key of ``platform_config/data/charts.yaml`` (repository, chart, exact version,
        namespace).
      chart: the catalogue key whose chart pin to install, when several releases share one chart (default:
        ``release``); its values still come from ``helm-values/<chart>/``.
      namespace: where to install (default: the catalogue entry's namespace).
      environment_name: selects ``helm-values/<release>/values-<env>.yaml``.
      image_registry: the environment's ECR registry; a release whose chart runs an upstream image listed for it
        (platform_config/data/upstream_images.yaml ``release``) gets that image through the registry's
        pull-through cache, pinned by the locked digest.
      computed_values: values from the infrastructure, merged last (default none).
      depends_on: what must exist first, e.g. the namespace or a CRD release (default nothing).
      timeout: seconds to wait for readiness (default 600).
    The values are written as plain YAML, so reviewers read them in the plan and tests parse them back. There is
    no input for secret values: a value given to a release is kept in the Terraform state, so secrets reach charts
    as Kubernetes Secrets (External Secrets, cert-manager) that the values only name.
    Failed installs and upgrades roll back (atomic). Exposes ``release``, ``values`` (the merged dict) and ``pin``.
    """

    def __init__(self, scope: Construct, id: str, *, release: str, environment_name: str, image_registry: str,
                 chart: str | None = None, namespace: str | None = None,
                 computed_values: Mapping[str, Any] | None = None,
                 depends_on: Sequence[ITerraformDependable] = (), timeout: int = DEFAULT_TIMEOUT) -> None:
        super().__init__(scope, id)
        catalogue = chart_catalogue()
        chart = chart or release
        if chart not in catalogue:
            raise ValueError(f"release {release!r}: chart {chart!r} is not in the chart catalogue; "
                             f"known: {', '.join(catalogue)}")
        self.pin: ChartPin = catalogue[chart]
        images = chart_image_values(release, registry=image_registry)
        self.values = release_values(chart, environment_name, {**images, **(computed_values or {})})
        self.release = Release(
            self, "release", name=release, repository=self.pin.repository, chart=self.pin.chart,
            version=self.pin.version, namespace=namespace or self.pin.namespace, create_namespace=False,
            values=[values_yaml(self.values)],
            atomic=True, cleanup_on_fail=True, wait=True, timeout=timeout, max_history=10,
            depends_on=list(depends_on) or None)
