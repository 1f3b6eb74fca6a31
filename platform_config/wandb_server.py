"""The self-managed Weights & Biases server: its settings and everything it needs inside the cluster.

Pure functions and data. The W&B operator (chart ``operator`` 1.4.8, ``namespaceIsolation``) deploys the server
from one ``WeightsAndBiases`` custom resource (``apps.wandb.com/v1``) into its own namespace; this module writes
that resource and the External Secrets that feed it (the MySQL password RDS keeps, the license, a generated
Redis password). ``modules/data/wandb_server.py`` builds the AWS side (RDS MySQL, bucket, license secret, Pod
Identity) from the same constants.

Checked against wandb/helm-charts tag ``operator-wandb-0.43.8`` (charts/operator-wandb, charts/wandb-base 0.12.4)
and wandb/operator tag ``v1.22.0`` (the controller the operator chart pins):
- the operator installs the chart named in ``spec.chart`` as Helm release ``<CR name>`` in the CR's namespace,
  and merges, first wins: CR values, console (user) values, the release channel's values (deploy.wandb.ai,
  fetched with the license), its own defaults. Lists are concatenated, not replaced
  (pkg/utils/merge.go), so a list set here cannot remove items the release channel adds.
- ``_releaseId`` is read only from the user-input Secret ``<CR name>-spec-user`` that the W&B console writes,
  never from the CR (internal/controller/weightsandbiases_controller.go): versions can't be pinned from here.
- Service accounts are ``<release>-<component>`` (wandb-base ``fullname``), one per component.

Its settings (``WandbServer``, part of the environment file) are in ``platform_config/wandb_settings.py``.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from platform_config.external_secrets import API_VERSION as EXTERNAL_SECRETS_API
from platform_config.external_secrets import store_ref
from platform_config.node_labels import CPU_POOL, POOL_LABEL
from platform_config.wandb_settings import WandbServer

Manifest = dict[str, Any]

#: Namespace of the operator and of the server (the operator's Role reaches no other namespace).
NAMESPACE = "wandb"
#: The custom resource's name, which is also the operator's Helm release name and the prefix of every object.
INSTANCE_NAME = "wandb"
#: The chart the operator deploys. Checked: wandb/helm-charts tag operator-wandb-0.43.8 (2026-07-23).
SERVER_CHART = {"url": "https://charts.wandb.ai", "name": "operator-wandb", "version": "0.43.8"}

MYSQL_PORT = 3306
#: The chart's default database name (charts/operator-wandb/values.yaml global.mysql.database).
DATABASE_NAME = "wandb_local"
MASTER_USERNAME = "wandb_admin"
#: Key of the license secret in the secrets naming scheme (``mlops-<env>/wandb-license``).
LICENSE_SECRET_KEY = "wandb-license"
#: Purpose in the bucket naming scheme (``mlops-<env>-wandb-<account>-<region>``).
BUCKET_PURPOSE = "wandb"

#: Kubernetes Secrets in the namespace, filled by External Secrets.
MYSQL_SECRET = "wandb-mysql"
LICENSE_SECRET = "wandb-license"
REDIS_SECRET = "wandb-redis"
#: Key of the MySQL password in ``MYSQL_SECRET``, URL-encoded: the chart puts $(MYSQL_PASSWORD) into
#: mysql://user:password@host/... as is (templates/_mysql.tpl) and its init container decodes it with
#: urllib.parse.unquote_plus (values.yaml app.initContainers.init-db).
MYSQL_PASSWORD_KEY = "MYSQL_PASSWORD"
LICENSE_KEY = "license"
REDIS_PASSWORD_KEY = "REDIS_PASSWORD"
#: RDS rotates the master password (every 7 days by default): new connections fail until the Secret follows and
#: the pods restart (the bundled Reloader restarts them when the Secret changes). Poll often to keep that short.
MYSQL_REFRESH_INTERVAL = "5m"
GENERATORS_API = "generators.external-secrets.io/v1alpha1"

#: Components that read or write the bucket (their envTpls include ``wandb.bucketEnvs``): each gets the W&B
#: server's Pod Identity role through its service account. ``lumen-agent`` names its service account ``lumen``.
BUCKET_COMPONENTS = ("app", "api", "executor", "filemeta", "filestream", "flat-run-fields-updater", "glue",
                     "history-updater", "metric-observer", "parquet", "parquet-metadata-cache",
                     "settings-migration-job")
EXTRA_BUCKET_SERVICE_ACCOUNTS = ("lumen",)
#: Every wandb-base component of the chart (its Chart.yaml aliases). Their containers get a Pod Security
#: "restricted" context: wandb-base runs them as uid 999 but drops no capabilities by default.
WANDB_BASE_COMPONENTS = ("app", "appRenamePreHook", "appRenamePostHook", "api", "console", "weave", "weave-trace",
                         "weave-trace-worker", "weave-evaluate-model-worker", "weave-trace-agent-scoring-worker",
                         "executor", "parquet", "parquet-metadata-cache", "flat-run-fields-updater",
                         "history-updater", "filestream", "nginx", "frontend", "filemeta", "anaconda2",
                         "internalSignerPreHook", "metric-observer", "glue", "settingsMigrationJob",
                         "clickhouseMigrationJob", "mcp-server", "lumen-agent")
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "privileged": False, "capabilities": {"drop": ["ALL"]}}
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"

def service_accounts() -> tuple[str, ...]:
    """The service accounts that use the bucket (``<release>-<component>``)."""
    return (*(f"{INSTANCE_NAME}-{component}" for component in BUCKET_COMPONENTS), *EXTRA_BUCKET_SERVICE_ACCOUNTS)



@dataclass(frozen=True)
class WandbServerRefs:
    """Names from the data layer (Terraform references when synthesized)."""

    bucket_name: str
    kms_key_arn: str
    database_host: str
    #: The secret RDS keeps the master credentials in (JSON with username, password).
    database_secret_arn: str
    #: The license secret (name or ARN); its value is the license text.
    license_secret: str


def _metadata(name: str) -> dict[str, str]:
    return {"name": name, "namespace": NAMESPACE}


def _store() -> dict[str, str]:
    return store_ref()


def secret_manifests(refs: WandbServerRefs) -> list[Manifest]:
    """External Secrets of the server: the MySQL password (URL-encoded, see ``MYSQL_PASSWORD_KEY``), the license,
    and a Redis password generated in the cluster once (letters and digits: it also goes into a URL)."""
    mysql = {"apiVersion": EXTERNAL_SECRETS_API, "kind": "ExternalSecret", "metadata": _metadata(MYSQL_SECRET),
             "spec": {"refreshInterval": MYSQL_REFRESH_INTERVAL, "secretStoreRef": _store(),
                      "target": {"name": MYSQL_SECRET, "creationPolicy": "Owner", "deletionPolicy": "Retain",
                                 "template": {"data": {MYSQL_PASSWORD_KEY: "{{ .password | urlquery }}"}}},
                      "data": [{"secretKey": "password",
                                "remoteRef": {"key": refs.database_secret_arn, "property": "password"}}]}}
    license_ = {"apiVersion": EXTERNAL_SECRETS_API, "kind": "ExternalSecret", "metadata": _metadata(LICENSE_SECRET),
                "spec": {"refreshInterval": "1h", "secretStoreRef": _store(),
                         "target": {"name": LICENSE_SECRET, "creationPolicy": "Owner", "deletionPolicy": "Retain"},
                         "data": [{"secretKey": LICENSE_KEY, "remoteRef": {"key": refs.license_secret}}]}}
    generator = {"apiVersion": GENERATORS_API, "kind": "Password", "metadata": _metadata(REDIS_SECRET),
                 "spec": {"length": 40, "digits": 10, "symbols": 0, "noUpper": False, "allowRepeat": True}}
    redis = {"apiVersion": EXTERNAL_SECRETS_API, "kind": "ExternalSecret", "metadata": _metadata(REDIS_SECRET),
             "spec": {"refreshPolicy": "CreatedOnce",
                      "target": {"name": REDIS_SECRET, "creationPolicy": "Owner",
                                 "template": {"data": {REDIS_PASSWORD_KEY: "{{ .password }}"}}},
                      "dataFrom": [{"sourceRef": {"generatorRef": {"apiVersion": GENERATORS_API, "kind": "Password",
                                                                   "name": REDIS_SECRET}}}]}}
    return [mysql, license_, generator, redis]


def _ingress(server: WandbServer) -> dict[str, Any]:
    prefix = "alb.ingress.kubernetes.io"
    annotations = {f"{prefix}/scheme": server.scheme, f"{prefix}/target-type": "ip",
                   f"{prefix}/listen-ports": '[{"HTTPS":443}]', f"{prefix}/certificate-arn": server.certificate_arn,
                   f"{prefix}/ssl-policy": TLS_POLICY}
    if server.inbound_cidrs:
        annotations[f"{prefix}/inbound-cidrs"] = ",".join(str(cidr) for cidr in server.inbound_cidrs)
    return {"class": "alb", "annotations": annotations}


def server_values(server: WandbServer, *, region: str, refs: WandbServerRefs,
                  node_selector: dict[str, str] | None = None) -> dict[str, Any]:
    """``spec.values`` of the custom resource: the operator-wandb chart's values (0.43.8)."""
    values: dict[str, Any] = {
        "global": {
            "host": server.url,
            # "aws": services get alb.ingress.kubernetes.io/healthcheck-path from loadBalancerHealthCheckPath.
            "cloudProvider": "aws",
            "licenseSecret": {"name": LICENSE_SECRET, "key": LICENSE_KEY},
            "mysql": {"host": refs.database_host, "port": MYSQL_PORT, "database": DATABASE_NAME,
                      "user": MASTER_USERNAME,
                      "passwordSecret": {"name": MYSQL_SECRET, "passwordKey": MYSQL_PASSWORD_KEY}},
            # global.bucket (not defaultBucket): the server stores everything there and the console can't move it.
            # No access keys: the SDKs in the pods use the Pod Identity role of their service account.
            "bucket": {"provider": "s3", "name": refs.bucket_name, "region": region, "kmsKey": refs.kms_key_arn},
            "redis": {"secret": {"secretName": REDIS_SECRET, "secretKey": REDIS_PASSWORD_KEY}},
        },
        "ingress": _ingress(server),
        # Keep every object namespaced (the operator holds only a Role): the default JWT map renders a
        # ClusterRoleBinding (templates/oidc.yaml), otel a DaemonSet with a ClusterRole, and the bundled
        # Prometheus (prometheus-community 24.5.0) a ClusterRole.
        "app": {"internalJWTMap": [], "service": {"loadBalancerHealthCheckPath": "/ready"}},
        "otel": {"install": False},
        "prometheus": {"install": False},
        "mysql": {"install": False},
        # The bundled Redis 7 (bitnami chart 18.19.4): password from REDIS_SECRET, reachable from this namespace only.
        "redis": {"install": True, "auth": {"enabled": True},
                  "networkPolicy": {"enabled": True, "allowExternal": False,
                                    "extraIngress": [{"ports": [{"port": 6379}], "from": [{"podSelector": {}}]}]}},
        # Restarts the server's Deployments (annotated reloader.stakater.com/auto by wandb-base) when a Secret they
        # use changes, e.g. the MySQL password after an RDS rotation. Namespaced: watchGlobally false -> a Role.
        "reloader": {"install": True, "reloader": {
            "watchGlobally": False, "readOnlyRootFileSystem": True,
            "deployment": {"containerSecurityContext": deepcopy(RESTRICTED_CONTAINER)}}},
    }
    for component in WANDB_BASE_COMPONENTS:
        values.setdefault(component, {})["securityContext"] = deepcopy(RESTRICTED_CONTAINER)
    if node_selector:
        values["global"]["nodeSelector"] = dict(node_selector)
    return values


def custom_resource(server: WandbServer, *, region: str, refs: WandbServerRefs,
                    node_selector: dict[str, str] | None = None) -> Manifest:
    """The ``WeightsAndBiases`` resource the operator deploys the server from."""
    return {"apiVersion": "apps.wandb.com/v1", "kind": "WeightsAndBiases",
            "metadata": {**_metadata(INSTANCE_NAME),
                         # As in the operator chart's own example (charts/operator/wandb.yaml).
                         "labels": {"app.kubernetes.io/name": "weightsandbiases",
                                    "wandb.ai/console-default": "true"}},
            "spec": {"chart": dict(SERVER_CHART),
                     "values": server_values(server, region=region, refs=refs, node_selector=node_selector)}}


def server_manifests(server: WandbServer, *, region: str, refs: WandbServerRefs) -> list[Manifest]:
    """Everything the raw-manifests release delivers into ``NAMESPACE``: the External Secrets first, then the
    custom resource. Every pod of the server runs on the CPU pool (W&B runs on x86 only)."""
    return [*secret_manifests(refs),
            custom_resource(server, region=region, refs=refs, node_selector={POOL_LABEL: CPU_POOL})]
