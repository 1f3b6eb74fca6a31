"""Typed environments: what one `environments/<env>.yaml` may say, and the rules it must obey.

Every model is frozen and forbids unknown keys. Rules that concern one field are field validators, so the error
points at that field; rules that relate several parts of the file are collected by ``Environment`` and reported
together, each with its own field path (see ``ConfigProblems``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from ipaddress import IPv4Network
from itertools import combinations
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from platform_config.catalogue import InstanceType, SupportPhase, load_catalogue
from platform_config.images import inference_image, platform_images, platform_tag_problem
from platform_config.inference_engines import serves_grpc
from platform_config.wandb_settings import WandbServer

#: CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)
_NAME = r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$"
_REGION = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"
_IAM_PRINCIPAL = r"^arn:aws:iam::\d{12}:(role|user)/[\w+=,.@/-]+$"
_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"


def validation_day(info: ValidationInfo) -> date:
    """The day support dates are judged on: ``today`` of the validation context (tests, ``load_environment``),
    otherwise the current date."""
    return (info.context or {}).get("today") or date.today()


def _not_below(value: int | None, info: ValidationInfo, lower_field: str) -> int | None:
    """Refuse ``value`` below the already validated field ``lower_field`` (e.g. max_size below desired_size)."""
    lower = info.data.get(lower_field)
    if value is not None and lower is not None and value < lower:
        raise ValueError(f"{info.field_name} {value} can't be less than {lower_field} {lower}")
    return value


class ConfigProblems(ValueError):
    """Several problems found by one cross-field rule, each with the dotted path of the field it concerns."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _log_retention(days: int) -> int:
    if days not in LOG_RETENTION_DAYS:
        allowed = ", ".join(map(str, LOG_RETENTION_DAYS))
        raise ValueError(f"{days} is not a CloudWatch retention period; allowed: {allowed}")
    return days


LogRetentionDays = Annotated[int, AfterValidator(_log_retention)]


class NatStrategy(StrEnum):
    SINGLE = "single"
    ONE_PER_AZ = "one_per_az"


class SharingMode(StrEnum):
    TIME_SLICING = "time-slicing"
    MIG = "mig"
    #: Whole, unshared GPUs: a pod may ask for several (multi-GPU training), which time-sliced pools refuse.
    EXCLUSIVE = "exclusive"


class CapacityType(StrEnum):
    ON_DEMAND = "ON_DEMAND"
    SPOT = "SPOT"


class Network(_Frozen):
    """The VPC. Subnet lists are ordered like ``availability_zones``: one public and one private subnet per AZ."""

    vpc_cidr: IPv4Network
    public_subnets: list[IPv4Network]
    private_subnets: list[IPv4Network]
    nat_gateways: NatStrategy
    #: Retention of the VPC flow logs (default 365 days).
    flow_log_retention_days: LogRetentionDays = 365


class AdminPrincipal(_Frozen):
    """An IAM role or user given cluster-admin through an EKS access entry."""

    arn: Annotated[str, Field(pattern=_IAM_PRINCIPAL)]


class Cluster(_Frozen):
    kubernetes_version: str
    #: Kubernetes service CIDR; must not overlap the VPC.
    service_cidr: IPv4Network
    #: The API endpoint is always private; it is also public only when CIDRs are listed here (default: none).
    public_access_cidrs: list[IPv4Network] = []
    admin_principals: Annotated[list[AdminPrincipal], Field(min_length=1)]
    #: Principals with read-only access to the cluster's objects (e.g. the CI plan role; default none).
    viewer_principals: list[AdminPrincipal] = []
    #: Retention of the control-plane logs (default 90 days).
    log_retention_days: LogRetentionDays = 90
    #: Waiting period before a scheduled KMS key deletion takes effect (default 30, the maximum).
    kms_deletion_window_days: Annotated[int, Field(ge=7, le=30)] = 30

    @field_validator("kubernetes_version")
    @classmethod
    def _supported_version(cls, version: str, info: ValidationInfo) -> str:
        catalogue = load_catalogue()
        today = validation_day(info)
        allowed = ", ".join(catalogue.versions_in(today, SupportPhase.STANDARD, SupportPhase.EXTENDED))
        release = catalogue.kubernetes_versions.get(version)
        if release is None:
            raise ValueError(f"{version!r} is not in the EKS calendar of the catalogue; allowed: {allowed}")
        if release.phase(today) is SupportPhase.UNRELEASED:
            raise ValueError(f"{version!r} is released on EKS on {release.released}; allowed: {allowed}")
        if release.phase(today) is SupportPhase.ENDED:
            raise ValueError(f"{version!r} reached the end of EKS support on {release.end_of_extended_support} "
                             f"(EKS upgrades such clusters by itself); allowed: {allowed}")
        return version

    @field_validator("public_access_cidrs")
    @classmethod
    def _explicit_public_cidrs(cls, cidrs: list[IPv4Network]) -> list[IPv4Network]:
        for cidr in cidrs:
            if cidr.prefixlen < 8:
                raise ValueError(f"{cidr} opens the public API endpoint to too much of the internet; "
                                 "list explicit CIDRs of /8 or narrower")
        return cidrs


class GpuSharing(_Frozen):
    """How one GPU is shared: time-slicing into ``replicas``, MIG partitions (``layout``: profile -> count), or not
    at all (``exclusive``: each GPU belongs to one pod, and a pod may have several)."""

    mode: SharingMode
    replicas: int | None = None
    layout: dict[str, int] | None = None

    @field_validator("replicas")
    @classmethod
    def _replicas_in_range(cls, replicas: int | None) -> int | None:
        allowed = load_catalogue().time_slicing_replicas
        if replicas is not None and not allowed.min <= replicas <= allowed.max:
            raise ValueError(f"{replicas} replicas per GPU; allowed: {allowed.min} to {allowed.max}")
        return replicas

    @model_validator(mode="after")
    def _fields_match_mode(self) -> GpuSharing:
        if self.mode == SharingMode.TIME_SLICING and (self.replicas is None or self.layout is not None):
            raise ValueError("mode time-slicing needs 'replicas' and takes no 'layout'")
        if self.mode == SharingMode.MIG and (self.layout is None or self.replicas is not None):
            raise ValueError("mode mig needs 'layout' (MIG profile -> instances per GPU) and takes no 'replicas'")
        if self.mode == SharingMode.EXCLUSIVE:
            given = [f"'{name}' ({kind})" for name, kind in (("replicas", "time-slicing"), ("layout", "MIG"))
                     if getattr(self, name) is not None]
            if given:
                raise ValueError(f"mode exclusive gives pods whole, unshared GPUs and takes no sharing settings: "
                                 f"remove {' and '.join(given)}, or use mode time-slicing or mig")
        return self


class GpuSpec(_Frozen):
    #: The GPU model the pool is meant to carry; must match the instance type (see the catalogue).
    model: str
    sharing: GpuSharing

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str) -> str:
        models = load_catalogue().gpu_models
        if model not in models:
            raise ValueError(f"unknown GPU model {model!r}; allowed: {', '.join(models)}")
        return model

    @field_validator("sharing")
    @classmethod
    def _layout_fits_one_gpu(cls, sharing: GpuSharing, info: ValidationInfo) -> GpuSharing:
        model = info.data.get("model")
        if model and sharing.mode is SharingMode.MIG and sharing.layout is not None:
            problem = load_catalogue().mig_layout_problem(model, sharing.layout)
            if problem:
                layout = " + ".join(f"{name} x{count}" for name, count in sharing.layout.items())
                raise ValueError(f"MIG layout {layout} does not fit one {model}: {problem}")
        return sharing


class NodePool(_Frozen):
    """A managed node group. Sizes follow EKS: ``min_size <= desired_size <= max_size``."""

    instance_types: Annotated[list[str], Field(min_length=1)]
    #: What runs on the pool (documentation for reviewers and the report).
    purpose: list[str] = []
    capacity_type: CapacityType = CapacityType.ON_DEMAND
    min_size: Annotated[int, Field(ge=0)]
    desired_size: Annotated[int, Field(ge=0)]
    max_size: Annotated[int, Field(ge=1)]
    #: Root volume size (default 100 GiB; GPU pools want room for large images).
    disk_size_gib: Annotated[int, Field(ge=20, le=16384)] = 100
    #: AZs the pool may use (default: all of the environment's). GPU types are offered in few AZs.
    availability_zones: list[str] | None = None
    #: Present on GPU pools only (checked against the instance type even when left out).
    gpu: Annotated[GpuSpec | None, Field(validate_default=True)] = None

    @field_validator("instance_types")
    @classmethod
    def _known_and_alike(cls, types: list[str]) -> list[str]:
        catalogue = load_catalogue().instance_types
        unknown = [t for t in types if t not in catalogue]
        if unknown:
            raise ValueError(f"unknown instance type(s) {', '.join(unknown)}; allowed: {', '.join(catalogue)}")
        kinds = {(catalogue[t].gpu_model, catalogue[t].gpus) for t in types}
        if len(kinds) > 1:
            raise ValueError(f"{', '.join(types)} carry different GPUs; one pool takes one kind of node")
        return types

    @field_validator("desired_size")
    @classmethod
    def _desired_not_below_min(cls, desired: int, info: ValidationInfo) -> int:
        return _not_below(desired, info, "min_size")

    @field_validator("max_size")
    @classmethod
    def _max_not_below_desired(cls, maximum: int, info: ValidationInfo) -> int:
        return _not_below(maximum, info, "desired_size")

    @field_validator("gpu")
    @classmethod
    def _gpu_matches_instance_type(cls, gpu: GpuSpec | None, info: ValidationInfo) -> GpuSpec | None:
        types = info.data.get("instance_types")
        if not types:
            return gpu
        instance = load_catalogue().instance_types[types[0]]
        if gpu is None and instance.is_gpu:
            raise ValueError(f"{types[0]} carries {instance.gpus}x {instance.gpu_model}: declare "
                             f"gpu: {{model: {instance.gpu_model}, sharing: ...}}")
        if gpu is not None and not instance.is_gpu:
            raise ValueError(f"{types[0]} has no GPU; remove 'gpu' or use a GPU instance type")
        if gpu is not None and gpu.model != instance.gpu_model:
            raise ValueError(f"model {gpu.model} does not match {types[0]}, which carries {instance.gpu_model}; "
                             f"use a {gpu.model} instance type or declare model {instance.gpu_model}")
        return gpu

    @property
    def instance(self) -> InstanceType:
        """The catalogue entry of the pool's instance types (they are alike by validation)."""
        return load_catalogue().instance_types[self.instance_types[0]]

    @property
    def is_gpu(self) -> bool:
        return self.gpu is not None


_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"
#: The application namespaces every environment has.
APPLICATION_NAMESPACES = ("inference", "training", "agentic", "mlops")


class NamespaceQuota(_Frozen):
    """What one application namespace may request in total (a ResourceQuota)."""

    cpu: Annotated[str, Field(pattern=_QUANTITY)]
    memory: Annotated[str, Field(pattern=_QUANTITY)]
    #: Time-sliced GPU units (``nvidia.com/gpu``), default none.
    gpus: Annotated[int, Field(ge=0)] = 0
    #: MIG slices by profile (``nvidia.com/mig-<profile>``), default none.
    mig_slices: dict[str, Annotated[int, Field(ge=0)]] = {}


class ImageUpdates(StrEnum):
    """How a new image tag reaches the environment's folder of the GitOps repository."""

    #: A pull request, merged after review (the only way into a prod-tier environment).
    PULL_REQUEST = "pull-request"
    #: A commit straight to the watched revision: the environment follows every build.
    DIRECT = "direct"


_GITHUB_URL = re.compile(r"^(?:https://github\.com/|git@github\.com:)([\w.-]+/[\w.-]+?)(?:\.git)?$")


_GROUP = r"^[\w.@:/ -]{1,128}$"


class ArgoSso(_Frozen):
    """Single sign-on of Argo CD through an OIDC identity provider (PKCE: no client secret to keep)."""

    #: The identity provider's issuer URL (https).
    issuer: Annotated[str, Field(pattern=r"^https://[\w.-]+(:\d+)?(/[\w./~-]*)?$")]
    #: The client registered for Argo CD at that provider, with the redirect ``<url>/auth/callback``.
    client_id: Annotated[str, Field(min_length=1, max_length=256)]
    #: The address people open Argo CD at (default ``https://localhost:8080``, the port-forward).
    url: Annotated[str, Field(pattern=r"^https://[\w.-]+(:\d+)?$")] = "https://localhost:8080"
    #: Identity-provider groups (the ``groups`` claim) that administer Argo CD; at least one.
    admin_groups: Annotated[list[Annotated[str, Field(pattern=_GROUP)]], Field(min_length=1)]
    #: Groups that may only look (default none). Anyone else signed in sees nothing.
    readonly_groups: list[Annotated[str, Field(pattern=_GROUP)]] = []


class GitOps(_Frozen):
    """Where ArgoCD's root application (app of apps) reads the environment's applications, and where the
    platform's workloads read their image tags (``<path>/image-tags.yaml``)."""

    repository_url: Annotated[str, Field(pattern=r"^(https://|git@)[\w.@:/~-]+?(\.git)?$")]
    revision: str = "main"
    path: Annotated[str, Field(pattern=r"^[\w./-]+$")]
    #: How the image workflow brings a new tag here: ``pull-request`` (default) or ``direct``.
    image_updates: ImageUpdates = ImageUpdates.PULL_REQUEST
    #: Sign-in to Argo CD (its local admin is always disabled); without it, only ``kubectl`` and
    #: ``argocd --core`` reach Argo CD. A prod-tier environment requires it.
    sso: ArgoSso | None = None

    @property
    def github_repository(self) -> str | None:
        """``<owner>/<name>`` when the repository is on GitHub, else None."""
        match = _GITHUB_URL.match(self.repository_url)
        return match.group(1) if match else None


class Platform(_Frozen):
    """The in-cluster layer."""

    gitops: GitOps
    #: One quota per application namespace: inference, training, agentic, mlops.
    namespace_quotas: dict[str, NamespaceQuota]

    @field_validator("namespace_quotas")
    @classmethod
    def _every_application_namespace(cls, quotas: dict[str, NamespaceQuota]) -> dict[str, NamespaceQuota]:
        if set(quotas) != set(APPLICATION_NAMESPACES):
            raise ValueError(f"got {', '.join(sorted(quotas)) or 'none'}; give exactly one quota for each of "
                             f"{', '.join(APPLICATION_NAMESPACES)}")
        return quotas


class GpuRequest(_Frozen):
    """What one pod asks for: time-sliced GPU units or MIG slices of one profile."""

    #: ``nvidia.com/gpu`` (time-sliced) or ``nvidia.com/mig-<profile>``.
    resource: Annotated[str, Field(pattern=r"^nvidia\.com/(gpu|mig-\d+g\.\d+gb)$")]
    count: Annotated[int, Field(ge=1)] = 1


class Placement(_Frozen):
    """Where a GPU workload runs: a GPU pool of the environment and the GPU request of each pod."""

    pool: str
    gpu: GpuRequest


class Scaling(_Frozen):
    replicas: Annotated[int, Field(ge=1)] = 1
    #: Upper bound of the autoscaler (default: ``replicas``); capacity is checked at this size.
    max_replicas: Annotated[int, Field(ge=1)] | None = None

    @field_validator("max_replicas")
    @classmethod
    def _not_below_replicas(cls, maximum: int | None, info: ValidationInfo) -> int | None:
        return _not_below(maximum, info, "replicas")

    @property
    def most(self) -> int:
        return self.max_replicas or self.replicas


class ModelSource(_Frozen):
    """Where a server reads its model: a prefix of the model-registry bucket (copied to local disk at start) or
    a folder of the EFS ``models`` access point (mounted read-only)."""

    store: Literal["s3", "efs"]
    path: Annotated[str, Field(pattern=r"^[\w][\w./-]*$")]
    #: The name clients use (the OpenAI ``model`` field); default: the last part of ``path``.
    served_name: str | None = None

    @property
    def name(self) -> str:
        return self.served_name or self.path.rstrip("/").rsplit("/", 1)[-1]


InferenceEngineKind = Literal["vllm", "triton", "tgi"]
#: A deployment's name is its Deployment and Service name: a DNS label.
_DEPLOYMENT_NAME = r"^[a-z]([a-z0-9-]{0,40}[a-z0-9])?$"


class InferenceEngine(_Frozen):
    """One inference server: a model on an engine, where it runs and how far it scales."""

    enabled: bool = True
    model: ModelSource
    #: Where each replica runs: a GPU pool and a MIG profile (``nvidia.com/mig-3g.40gb``) or whole/time-sliced
    #: GPUs (``nvidia.com/gpu`` with ``count``).
    placement: Placement
    scaling: Scaling = Scaling()
    #: The tag of the engine's image ``inference/<engine>``, built here (default: the version images.yml pushes,
    #: the only tag allowed).
    image_tag: str | None = None


class Route(_Frozen):
    """Where the shared ALB sends a deployment's requests: the engine's API paths (the catalogue's), on every host
    or only on ``host``. Two deployments of one engine need different hosts: the ALB routes by host and path."""

    #: A host name the clients use (DNS pointed at the ALB); default: any host.
    host: Annotated[str, Field(pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")] | None = None


class ModelDeployment(InferenceEngine):
    """A model served by one engine; an environment may run several models on the same engine."""

    engine: InferenceEngineKind
    route: Route = Route()


class Exposure(_Frozen):
    """How a load balancer exposes inference: internal by default; internet-facing only with TLS.

    Whatever the scheme, the load balancer is placed in the public subnets, where nothing else runs but the NAT
    gateways: the mesh then admits its plain (non-mTLS) traffic from those subnets only, never from the subnets
    of the nodes and pods. Clients outside the VPC (peering, transit gateway, VPN) need their routes in the public
    route table too.
    """

    scheme: Literal["internal", "internet-facing"] = "internal"
    #: ACM certificate for TLS on the listener, of the environment's account and region (a load balancer takes no
    #: other). With it, the only listener is HTTPS on 443 (gRPC: TLS on 443): no plain listener, not even a
    #: redirect, which would still receive each client's first request, API key included, in clear. Required when
    #: internet-facing and in a prod-tier environment. Without it (dev or staging tier, internal only) the listener
    #: is plain HTTP on 80 (gRPC on 8001) and every synth says so.
    certificate_arn: Annotated[str, Field(pattern=r"^arn:aws:acm:[a-z0-9-]+:\d{12}:certificate/[\w-]+$")] | None \
        = None
    #: The networks whose clients call inference through this load balancer: the only sources its security group
    #: admits (on-premises ranges, peered VPCs, the VPN). Required when the load balancer exists; 0.0.0.0/0 only
    #: when written here. In-cluster clients never come this way: they call the Service over the mesh, authorized
    #: by their service account.
    clients: list[IPv4Network] = []

    @model_validator(mode="after")
    def _tls_when_public(self) -> Exposure:
        if self.scheme == "internet-facing" and not self.certificate_arn:
            raise ValueError("internet-facing needs certificate_arn (TLS); or use scheme internal")
        return self

    @property
    def certificate_account(self) -> str | None:
        return self.certificate_arn.split(":")[4] if self.certificate_arn else None

    @property
    def certificate_region(self) -> str | None:
        return self.certificate_arn.split(":")[3] if self.certificate_arn else None


class Inference(_Frozen):
    #: The model deployments, by name (their Deployment and Service names), each on one engine: vllm, triton or
    #: tgi (TGI is in maintenance mode upstream). Several may use the same engine.
    deployments: Annotated[dict[Annotated[str, Field(pattern=_DEPLOYMENT_NAME)], ModelDeployment],
                           Field(min_length=1)]
    #: Batch inference: a vLLM server on the time-slicing pool (default none).
    batch: InferenceEngine | None = None
    #: HTTP through an ALB Ingress.
    http: Exposure = Exposure()
    #: TCP (gRPC) through an NLB Service, one per enabled deployment whose engine serves gRPC (Triton).
    tcp: Exposure = Exposure()

    def exposures(self) -> dict[str, Exposure]:
        """The exposures that have a load balancer, by field name: ``http`` always (some deployment is enabled:
        the agents call one), ``tcp`` when an enabled deployment serves gRPC."""
        grpc = any(d.enabled and serves_grpc(d.engine) for d in self.deployments.values())
        return {"http": self.http, **({"tcp": self.tcp} if grpc else {})}


class AgentRuntime(_Frozen):
    #: ECR repository (in the environment's account and region) and tag of the runtime's image: an image built
    #: here (``images/<repository>/``) at the version images.yml pushes (platform_config/data/platform_images.yaml).
    image_repository: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._/-]*$")]
    image_tag: Annotated[str, Field(pattern=r"^[\w][\w.-]{0,127}$")]
    scaling: Scaling = Scaling()
    #: Critical agents run on the MIG pool (``agents.critical_placement``) instead of the CPU pool.
    critical: bool = False

    @field_validator("image_repository")
    @classmethod
    def _built_here(cls, repository: str) -> str:
        agents = [name for name in platform_images() if name.startswith("agents/")]
        if repository not in agents:
            raise ValueError(f"{repository!r} has no build context (images/{repository}/); agent images built "
                             f"here: {', '.join(agents)}")
        return repository

    @field_validator("image_tag")
    @classmethod
    def _pushed_tag(cls, tag: str, info: ValidationInfo) -> str:
        repository = info.data.get("image_repository")
        problem = repository and platform_tag_problem(repository, tag)
        if problem:
            raise ValueError(problem)
        return tag


class Agents(_Frozen):
    runtimes: dict[Literal["crewai", "langgraph", "autogen"], AgentRuntime]
    #: The model deployment whose OpenAI-compatible endpoint the agents call (default: the one named vllm).
    llm_deployment: str = "vllm"
    #: Where critical agents run (a MIG slice); absent: every agent runs on the CPU pool.
    critical_placement: Placement | None = None


class TeamQueue(_Frozen):
    """A team's guaranteed GPU units per pool (Kueue nominal quota); idle units of other teams may be borrowed."""

    gpus: dict[str, Annotated[int, Field(ge=0)]]


class Training(_Frozen):
    teams: Annotated[dict[str, TeamQueue], Field(min_length=1)]
    #: Where the nodes of the distributed training runtimes run: a pool offering ``nvidia.com/gpu`` and the GPUs of
    #: each training node. Several GPUs per node need a pool with sharing mode ``exclusive`` (default none: the
    #: runtimes carry no placement and a job goes wherever its queue's flavor admits it).
    distributed_placement: Placement | None = None


class WeightsAndBiases(_Frozen):
    #: The W&B server the SDK talks to: the hosted service, or with self_managed ``https://<server.host>``.
    base_url: Annotated[str, Field(pattern=r"^https://\S+$")] = "https://api.wandb.ai"
    #: Install the self-managed W&B server in the cluster (default false).
    self_managed: bool = False
    #: The self-managed server: host, ACM certificate, ALB scheme, database (required with self_managed).
    server: WandbServer | None = None

    @model_validator(mode="after")
    def _server_when_self_managed(self) -> WeightsAndBiases:
        if self.self_managed and self.server is None:
            raise ValueError("self_managed: true needs 'server' (host, certificate_arn)")
        if self.server is not None and not self.self_managed:
            raise ValueError("'server' is read only with self_managed: true; remove it or set self_managed")
        if self.server is not None and self.base_url.rstrip("/") != self.server.url:
            raise ValueError(f"base_url {self.base_url} must be the self-managed server's URL {self.server.url}")
        return self


class Workloads(_Frozen):
    inference: Inference
    agents: Agents
    training: Training
    wandb: WeightsAndBiases = WeightsAndBiases()


class Tier(StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class Protection(_Frozen):
    """How hard the environment's stateful resources are to destroy by mistake."""

    #: ``prevent_destroy`` on every stateful resource (buckets, EFS, database, keys, secrets), deletion
    #: protection on the cluster and the database (default true).
    prevent_destroy: bool = True
    #: Let ``terraform destroy`` empty and delete non-empty buckets (default false; never allowed in prod).
    force_destroy_buckets: bool = False
    #: The only way to turn ``prevent_destroy`` off in a prod-tier environment: a named reason (who, why, until
    #: when), printed as a warning by every synth (default none).
    unprotected_prod_override: str | None = None


class Database(_Frozen):
    """The MLflow backend database (RDS PostgreSQL)."""

    #: Major version; minor versions are upgraded by RDS in the maintenance window.
    postgres_version: Literal["15", "16", "17"] = "16"
    instance_class: Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")] = "db.t4g.medium"
    allocated_storage_gib: Annotated[int, Field(ge=20, le=65536)] = 50
    #: Storage autoscaling ceiling (default 500 GiB).
    max_allocated_storage_gib: Annotated[int, Field(ge=20, le=65536)] = 500
    multi_az: bool = False
    backup_retention_days: Annotated[int, Field(ge=1, le=35)] = 7

    @field_validator("max_allocated_storage_gib")
    @classmethod
    def _ceiling_above_start(cls, ceiling: int, info: ValidationInfo) -> int:
        return _not_below(ceiling, info, "allocated_storage_gib")


class Buckets(_Frozen):
    """Lifecycle of the S3 buckets (raw-data, artifacts, logs, model-registry)."""

    #: Days a replaced or deleted object version is kept (default 90).
    noncurrent_version_days: Annotated[int, Field(ge=1)] = 90
    #: Days server access logs are kept (default 365).
    access_log_days: Annotated[int, Field(ge=1)] = 365
    #: Object lock (GOVERNANCE mode) on the model registry, in days; off when absent (default off).
    model_registry_object_lock_days: Annotated[int, Field(ge=1, le=3650)] | None = None


class Data(_Frozen):
    """The data layer: buckets, EFS, the MLflow database, secrets."""

    buckets: Buckets = Buckets()
    database: Database = Database()
    #: AWS Backup of EFS (default true).
    efs_backups: bool = True
    #: Days a deleted secret can be restored (7-30; default 30).
    secret_recovery_window_days: Annotated[int, Field(ge=7, le=30)] = 30


class StateBackend(_Frozen):
    """Where Terraform keeps state: an S3 bucket with native lockfiles, one key per environment and stack."""

    bucket: Annotated[str, Field(pattern=_BUCKET)]
    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9!_.*'()/-]+$")]
    region: Annotated[str, Field(pattern=_REGION)]
    #: S3-native state locking (Terraform >= 1.10); there is no DynamoDB table to keep.
    use_lockfile: bool = True
    #: The customer-managed key that encrypts the state (SSE-KMS), made at bootstrap with a key policy that lets
    #: only this environment's deploy and plan roles use it: the state holds private keys and database endpoints.
    kms_key_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")]

    @property
    def kms_key_region(self) -> str:
        return self.kms_key_arn.split(":")[3]

    @property
    def kms_key_account(self) -> str:
        return self.kms_key_arn.split(":")[4]


class Delivery(_Frozen):
    """Delivery from GitHub Actions into this environment's account (the ``<env>-delivery`` stack): ECR repositories
    for the platform's images, the GitHub OIDC provider, and the plan, deploy and image-push roles."""

    #: The one repository whose workflows may assume the roles: ``<owner>/<name>`` exactly as GitHub spells it.
    github_repository: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")]
    #: GitHub environments whose jobs may deploy into this account (default: the environment's own name).
    deploy_environments: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,255}$")]] | None = None
    #: Untagged images expire this many days after push (default 7).
    untagged_image_expiry_days: Annotated[int, Field(ge=1)] = 7
    #: The most recent tagged images kept per repository (default 50).
    tagged_images_kept: Annotated[int, Field(ge=1)] = 50
    #: The account's existing GitHub OIDC provider, if it has one (an account holds one per URL); default: create it.
    github_oidc_provider_arn: Annotated[
        str, Field(pattern=r"^arn:aws:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$")] | None = None


class Account(_Frozen):
    """What the environment's account already holds (things an account has once)."""

    #: The account already has the Auto Scaling service-linked role ``AWSServiceRoleForAutoScaling`` (it appears
    #: with the account's first Auto Scaling group; ``aws iam get-role --role-name AWSServiceRoleForAutoScaling``
    #: tells). Default false: the network layer creates it, and creating it twice fails.
    autoscaling_service_linked_role_exists: bool = False


class Environment(_Frozen):
    """One environment: one AWS account and region."""

    name: Annotated[str, Field(pattern=_NAME)]
    account_id: Annotated[str, Field(pattern=r"^\d{12}$")]
    region: Annotated[str, Field(pattern=_REGION)]
    availability_zones: Annotated[list[str], Field(min_length=2, max_length=6)]
    #: What the environment is for; prod-tier environments must protect their state.
    tier: Tier
    #: Production-grade availability: three or more AZs and a NAT gateway in each (default false).
    high_availability: bool = False
    network: Network
    cluster: Cluster
    data: Data = Data()
    platform: Platform
    workloads: Workloads
    node_pools: Annotated[dict[str, NodePool], Field(min_length=1)]
    state_backend: StateBackend
    account: Account = Account()
    protection: Protection = Protection()
    #: Delivery from GitHub Actions (the ``<env>-delivery`` stack); no such stack without it.
    delivery: Delivery | None = None
    #: Tags on every AWS resource (the provider's default_tags).
    tags: dict[str, str] = {}

    @field_validator("node_pools")
    @classmethod
    def _pool_names(cls, pools: dict[str, NodePool]) -> dict[str, NodePool]:
        for name in pools:
            if not re.match(_NAME, name):
                raise ValueError(f"pool name {name!r} must be lower-case letters, digits and '-' (2-20 characters)")
        return pools

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Environment:
        problems = [problem for rule in self.cross_field_rules() for problem in rule()]
        if problems:
            raise ConfigProblems(problems)
        return self

    def cross_field_rules(self) -> list[Callable[[], list[tuple[str, str]]]]:
        """The rules that relate several parts of the file, each returning (field, message) problems. A file with
        field errors has them checked one by one over the parts that parsed (``platform_config.partial_validation``),
        so a rule stays small: one that reads a part in error is skipped whole."""
        return [self._zone_problems, self._cidr_problems, self._pool_problems, self._prod_protection_problems,
                self._state_key_problems, self._gitops_problems, self._database_problems, self._quota_problems,
                self._placement_problems, self._wandb_problems, self._image_problems, self._deployment_problems,
                self._inference_edge_problems]

    def _zone_problems(self) -> list[tuple[str, str]]:
        zones = self.availability_zones
        problems = []
        if len(set(zones)) != len(zones):
            problems.append(("availability_zones", f"{zones} lists an AZ twice"))
        foreign = [z for z in zones if not (z.startswith(self.region) and len(z) == len(self.region) + 1)]
        if foreign:
            problems.append(("availability_zones", f"{', '.join(foreign)} not in region {self.region}"))
        if self.high_availability and len(zones) < 3:
            problems.append(("availability_zones",
                             f"high_availability needs at least 3 AZs, got {len(zones)}"))
        if self.high_availability and self.network.nat_gateways != NatStrategy.ONE_PER_AZ:
            problems.append(("network.nat_gateways",
                             f"high_availability needs one_per_az (a NAT gateway per AZ), "
                             f"got {self.network.nat_gateways.value}"))
        return problems

    def _cidr_problems(self) -> list[tuple[str, str]]:
        net = self.network
        problems = []
        for field in ("public_subnets", "private_subnets"):
            subnets = getattr(net, field)
            if len(subnets) != len(self.availability_zones):
                problems.append((f"network.{field}", f"{len(subnets)} subnets for "
                                 f"{len(self.availability_zones)} AZs; list one per AZ, in AZ order"))
            for subnet in subnets:
                if not subnet.subnet_of(net.vpc_cidr):
                    problems.append((f"network.{field}", f"{subnet} is outside vpc_cidr {net.vpc_cidr}"))
        all_subnets = [*net.public_subnets, *net.private_subnets]
        for a, b in combinations(all_subnets, 2):
            if a.overlaps(b):
                problems.append(("network", f"subnets {a} and {b} overlap"))
        if self.cluster.service_cidr.overlaps(net.vpc_cidr):
            problems.append(("cluster.service_cidr",
                             f"{self.cluster.service_cidr} overlaps vpc_cidr {net.vpc_cidr}"))
        return problems

    def _pool_problems(self) -> list[tuple[str, str]]:
        problems = []
        for name, pool in self.node_pools.items():
            outside = sorted(set(pool.availability_zones or []) - set(self.availability_zones))
            if outside:
                problems.append((f"node_pools.{name}.availability_zones",
                                 f"{', '.join(outside)} not among the environment's AZs "
                                 f"{', '.join(self.availability_zones)}"))
        if not any(not pool.is_gpu and pool.min_size >= 1 for pool in self.node_pools.values()):
            problems.append(("node_pools", "no CPU pool with min_size >= 1: cluster services (CoreDNS, "
                                           "controllers) would have nowhere to run"))
        return problems

    @property
    def cluster_name(self) -> str:
        return f"mlops-{self.name}"

    def subnet_name(self, kind: Literal["public", "private"], zone: str) -> str:
        """The ``Name`` tag of the environment's ``kind`` subnet in ``zone`` (the load balancer controller finds
        subnets by it)."""
        return f"{self.cluster_name}-{kind}-{zone}"

    @property
    def plan_github_environment(self) -> str | None:
        """The GitHub environment a pull request's plan of this environment runs in, or None when it runs
        directly from the pull request. Plans read the state (private keys, endpoints), so beyond the dev tier
        they wait for the reviewers of ``plan-<name>``."""
        return None if self.tier is Tier.DEV else f"plan-{self.name}"

    def _prod_protection_problems(self) -> list[tuple[str, str]]:
        protection = self.protection
        problems = []
        if self.tier == Tier.PROD:
            if not protection.prevent_destroy and not protection.unprotected_prod_override:
                problems.append(("protection.prevent_destroy", "false is not allowed in a prod-tier environment "
                                 "without protection.unprotected_prod_override naming who turned it off and why"))
            if protection.force_destroy_buckets:
                problems.append(("protection.force_destroy_buckets", "true is never allowed in a prod-tier "
                                 "environment: buckets hold the only copy of models and data"))
            if self.cluster.kms_deletion_window_days != 30:
                problems.append(("cluster.kms_deletion_window_days", f"{self.cluster.kms_deletion_window_days} "
                                 "days; a prod-tier environment keeps the maximum, 30"))
        if protection.unprotected_prod_override and (self.tier != Tier.PROD or protection.prevent_destroy):
            problems.append(("protection.unprotected_prod_override",
                             "only for a prod-tier environment with prevent_destroy: false; remove it"))
        return problems

    def _state_key_problems(self) -> list[tuple[str, str]]:
        backend = self.state_backend
        if backend.kms_key_account != self.account_id or backend.kms_key_region != backend.region:
            return [("state_backend.kms_key_arn",
                     f"a key of account {backend.kms_key_account} in {backend.kms_key_region}; the state bucket "
                     f"needs a key of the environment's account {self.account_id} in the bucket's region "
                     f"{backend.region}")]
        return []

    def _gitops_problems(self) -> list[tuple[str, str]]:
        gitops = self.platform.gitops
        problems = []
        if self.tier == Tier.PROD and gitops.image_updates == ImageUpdates.DIRECT:
            problems.append(("platform.gitops.image_updates", "direct is not allowed in a prod-tier environment: a "
                             "new image tag reaches prod only through a reviewed pull request (allowed: "
                             "pull-request)"))
        if self.delivery is not None and gitops.github_repository is None:
            problems.append(("platform.gitops.repository_url", f"{gitops.repository_url} is not a "
                             "GitHub repository; the image workflow writes tags through a GitHub App (allowed: "
                             "https://github.com/<owner>/<name>.git or git@github.com:<owner>/<name>.git)"))
        if self.tier == Tier.PROD and gitops.sso is None:
            problems.append(("platform.gitops.sso", "missing: a prod-tier environment signs in to Argo CD through "
                             "SSO (the local admin is disabled); give issuer, client_id and admin_groups"))
        return problems

    def _database_problems(self) -> list[tuple[str, str]]:
        if self.high_availability and not self.data.database.multi_az:
            return [("data.database.multi_az", "high_availability needs a multi-AZ database, got false")]
        return []

    def _quota_problems(self) -> list[tuple[str, str]]:
        offered = {profile for pool in self.gpu_pools().values() if pool.gpu.sharing.layout
                   for profile in pool.gpu.sharing.layout}
        problems = []
        for namespace, quota in self.platform.namespace_quotas.items():
            missing = sorted(set(quota.mig_slices) - offered)
            if missing:
                problems.append((f"platform.namespace_quotas.{namespace}.mig_slices",
                                 f"{', '.join(missing)} offered by no MIG pool; offered: "
                                 f"{', '.join(sorted(offered)) or 'none'}"))
        return problems

    def _placement_problems(self) -> list[tuple[str, str]]:
        """Placements must name a GPU pool; whether it can hold them is the scheduling check's job."""
        gpu_pools = self.gpu_pools()
        workloads = self.workloads
        placements = {f"workloads.inference.deployments.{n}.placement": e.placement
                      for n, e in workloads.inference.deployments.items()}
        if workloads.inference.batch:
            placements["workloads.inference.batch.placement"] = workloads.inference.batch.placement
        if workloads.agents.critical_placement:
            placements["workloads.agents.critical_placement"] = workloads.agents.critical_placement
        if workloads.training.distributed_placement:
            placements["workloads.training.distributed_placement"] = workloads.training.distributed_placement
        problems = [(f"{field}.pool", f"{p.pool!r} is not a GPU pool; GPU pools: {', '.join(gpu_pools)}")
                    for field, p in placements.items() if p.pool not in gpu_pools]
        whole_or_sliced = [n for n, p in gpu_pools.items()
                           if p.gpu.sharing.mode in (SharingMode.TIME_SLICING, SharingMode.EXCLUSIVE)]
        for team, queue in workloads.training.teams.items():
            unknown = sorted(set(queue.gpus) - set(whole_or_sliced))
            if unknown:
                problems.append((f"workloads.training.teams.{team}.gpus",
                                 f"{', '.join(unknown)} not pools offering nvidia.com/gpu (time-slicing or "
                                 f"exclusive); training queues take {', '.join(whole_or_sliced)}"))
        if any(r.critical for r in workloads.agents.runtimes.values()) and not workloads.agents.critical_placement:
            problems.append(("workloads.agents.critical_placement",
                             "a runtime is critical but no critical_placement (MIG pool and slice) is given"))
        return problems

    def _image_problems(self) -> list[tuple[str, str]]:
        """An engine's image tag must be the one the image workflow pushes (the batch server runs vLLM)."""
        inference = self.workloads.inference
        engines = {f"workloads.inference.deployments.{name}": (deployment.engine, deployment)
                   for name, deployment in inference.deployments.items()}
        if inference.batch:
            engines["workloads.inference.batch"] = ("vllm", inference.batch)
        return [(f"{field}.image_tag", problem) for field, (kind, engine) in engines.items()
                if engine.image_tag and (problem := platform_tag_problem(inference_image(kind), engine.image_tag))]

    def _deployment_problems(self) -> list[tuple[str, str]]:
        """Deployments of one engine share its API paths on the ALB: each needs a host of its own. The agents
        call a deployment that runs."""
        inference, problems = self.workloads.inference, []
        routed: dict[tuple[str, str | None], str] = {}
        for name, deployment in inference.deployments.items():
            if not deployment.enabled:
                continue
            key = (deployment.engine, deployment.route.host)
            if key in routed:
                where = f"host {key[1]}" if key[1] else "every host"
                problems.append((f"workloads.inference.deployments.{name}.route.host",
                                 f"{routed[key]} already serves the {deployment.engine} API paths on {where}: "
                                 "give one of them its own route.host"))
            routed.setdefault(key, name)
        target = self.workloads.agents.llm_deployment
        enabled = [n for n, d in inference.deployments.items() if d.enabled]
        if target not in enabled:
            problems.append(("workloads.agents.llm_deployment",
                             f"{target!r} is not an enabled deployment; enabled: {', '.join(enabled) or 'none'}"))
        return problems

    def _inference_edge_problems(self) -> list[tuple[str, str]]:
        """Each inference load balancer admits named clients only, and serves TLS with a certificate it can use;
        a prod-tier environment serves TLS only."""
        problems = []
        for name, exposure in self.workloads.inference.exposures().items():
            field = f"workloads.inference.{name}"
            if not exposure.clients:
                problems.append((f"{field}.clients", "names no client network: list the CIDRs whose clients call "
                                 "inference through the load balancer, its security group's only sources "
                                 "(in-cluster clients use the mesh, not this list)"))
            inside = sorted({str(c) for c in exposure.clients for subnet in self.network.private_subnets
                             if c.overlaps(subnet)})
            if exposure.scheme == "internal" and inside:
                problems.append((f"{field}.clients", f"{', '.join(inside)} overlaps the private subnets, where every "
                                 "node and pod lives: any pod could reach the models through the load balancer, "
                                 "around the mesh's identity check; list only networks outside them (in-cluster "
                                 "clients call the Service over the mesh)"))
            if exposure.certificate_arn is None:
                if self.tier == Tier.PROD:
                    problems.append((f"{field}.certificate_arn", "missing: a prod-tier environment serves inference "
                                     "over TLS only; give an ACM certificate of account "
                                     f"{self.account_id} in {self.region} (arn:aws:acm:{self.region}:"
                                     f"{self.account_id}:certificate/<id>)"))
            elif (exposure.certificate_account, exposure.certificate_region) != (self.account_id, self.region):
                problems.append((f"{field}.certificate_arn",
                                 f"a certificate of account {exposure.certificate_account} in "
                                 f"{exposure.certificate_region}; the load balancer takes only one of the "
                                 f"environment's account {self.account_id} in its region {self.region}"))
        return problems

    def _wandb_problems(self) -> list[tuple[str, str]]:
        server = self.workloads.wandb.server
        if server is not None and server.certificate_region != self.region:
            return [("workloads.wandb.server.certificate_arn",
                     f"certificate from {server.certificate_region}; the ALB in {self.region} needs one from "
                     f"{self.region}")]
        return []

    def warnings(self, today: date | None = None) -> list[str]:
        """What every synth of this environment must say out loud (support dates judged on ``today``, default
        the current date)."""
        today = today or date.today()
        found = []
        override = self.protection.unprotected_prod_override
        if override:
            found.append(f"{self.name}: stateful resources are NOT protected from destroy "
                         f"(protection.unprotected_prod_override: {override})")
        for name, pool in self.gpu_pools().items():
            if pool.desired_size > pool.min_size:
                found.append(f"{self.name}: node_pools.{name}.desired_size {pool.desired_size} is above min_size "
                             f"{pool.min_size}: creating the node group waits for every desired GPU node, so missing "
                             "capacity or quota fails the cluster layer; the autoscaler adds nodes when pods need "
                             "them")
        for name, exposure in self.workloads.inference.exposures().items():
            if exposure.certificate_arn is None:
                clients = ", ".join(map(str, exposure.clients)) or "no client"
                found.append(f"{self.name}: workloads.inference.{name} has no certificate_arn: inference is served "
                             f"in clear (no TLS) to {clients}; a prod-tier environment refuses this")
        catalogue = load_catalogue()
        version = self.cluster.kubernetes_version
        release = catalogue.kubernetes_versions[version]
        if release.phase(today) is SupportPhase.EXTENDED:
            standard = ", ".join(catalogue.versions_in(today, SupportPhase.STANDARD)) or "none in the catalogue"
            found.append(f"{self.name}: cluster.kubernetes_version {version} is in EKS extended support (extra "
                         f"cost per cluster hour) since {release.end_of_standard_support} and ends on "
                         f"{release.end_of_extended_support}; move to a version in standard support: {standard}")
        return found

    def gpu_pools(self) -> dict[str, NodePool]:
        return {name: pool for name, pool in self.node_pools.items() if pool.is_gpu}

    def pool_zones(self, pool_name: str) -> list[str]:
        """The AZs a pool runs in, in the environment's AZ order."""
        wanted = self.node_pools[pool_name].availability_zones
        return [z for z in self.availability_zones if wanted is None or z in wanted]
