"""Capacity and cost of an environment: the GPU capacity of each node pool and what the platform costs on demand.

Pure: no cdktf, no clock, no AWS; it reads only the price table (``data/prices.yaml``) and the catalogue. Its inputs
are the validated environment (the node pools) and the parsed synthesized stacks of that environment (what exists
besides the pools: NAT gateways, VPC endpoints, the database, load balancers, keys, secrets). The pools can also be
read back from a synthesized cluster stack (``pools_from_cluster_stack``): that is how ``make diff`` compares a base
revision without importing its Python.

Capacity, per pool: nodes at min / desired / max, physical GPUs, and the GPU resources one node advertises
(``gpu_sharing.node_resources``: time-sliced ``nvidia.com/gpu`` replicas, ``nvidia.com/mig-<profile>`` slices), the
same numbers as the Cluster Autoscaler's node-template tags and the scheduling check.

Cost: on-demand list prices of one region (``PriceTable``); a month is ``hours_per_month`` (730) hours. A pool's
nodes are priced at its first instance type (on-demand managed node groups launch the listed types in that order of
priority); node root volumes are priced as gp3. An amount that uses a price marked ``unverified``, or a price table
of another region, is an estimate; an item the table has no price for is named in ``missing`` and left out of the
amount, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from platform_config.catalogue import load_catalogue
from platform_config.gpu_sharing import AUTOSCALER_TEMPLATE_PREFIX, node_resources
from platform_config.images import with_default_tags
from platform_config.models import Environment, SharingMode
from platform_config.node_labels import GPU_MODEL_LABEL, GPU_RESOURCE, GPU_SHARING_LABEL, POOL_LABEL

PRICES_FILE = Path(__file__).with_name("data") / "prices.yaml"

#: The three sizes of a pool the report prices.
SCALES = ("min", "desired", "max")
Scale = Literal["min", "desired", "max"]

#: Prices every table must have, and the unit each is quoted in.
SERVICE_UNITS = {
    "eks_cluster": "hour",
    "nat_gateway": "hour",
    "public_ipv4_address": "hour",
    "interface_endpoint_az": "hour",
    "application_load_balancer": "hour",
    "network_load_balancer": "hour",
    "ebs_gp3_storage": "gb-month",
    "rds_gp3_storage": "gb-month",
    "efs_standard_storage": "gb-month",
    "kms_key": "month",
    "secrets_manager_secret": "month",
}


# --- the price table -----------------------------------------------------------------------------------------------

class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PriceEntry(_Frozen):
    """One list price: ``price`` USD per ``unit`` (instance-hour, month, GB-month)."""

    price: Decimal = Field(ge=0)
    unit: Literal["hour", "month", "gb-month"] = "hour"
    #: Key of the price table's ``sources``: the AWS page the price is published on.
    source: str
    #: True when no public copy confirmed the figure: amounts using it are estimates.
    unverified: bool = False
    checked_against: str | None = None
    note: str | None = None


class PriceTable(_Frozen):
    """Dated list prices of one region (``data/prices.yaml``)."""

    as_of: date
    region: str
    currency: Literal["USD"]
    basis: str
    hours_per_month: int = Field(gt=0)
    sources: dict[str, str]
    #: EC2 instance types, USD per instance-hour.
    instances: dict[str, PriceEntry]
    #: RDS instance classes (Single-AZ), USD per instance-hour.
    databases: dict[str, PriceEntry]
    #: Everything else, keyed like ``SERVICE_UNITS``.
    services: dict[str, PriceEntry]

    @model_validator(mode="after")
    def _consistent(self) -> PriceTable:
        problems = []
        for group in ("instances", "databases", "services"):
            for name, entry in getattr(self, group).items():
                if entry.source not in self.sources:
                    problems.append(f"{group}.{name}.source: {entry.source!r} is not one of sources "
                                    f"({', '.join(self.sources)})")
                expected = SERVICE_UNITS.get(name, "hour") if group == "services" else "hour"
                if entry.unit != expected:
                    problems.append(f"{group}.{name}.unit: {entry.unit} (expected {expected})")
        missing = sorted(set(SERVICE_UNITS) - set(self.services))
        if missing:
            problems.append(f"services: missing {', '.join(missing)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def unverified(self) -> list[str]:
        """``<group>.<name>`` of every price marked unverified."""
        return [f"{group}.{name}" for group in ("instances", "databases", "services")
                for name, entry in getattr(self, group).items() if entry.unverified]

    def service(self, name: str) -> PriceEntry:
        return self.services[name]


@cache
def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    """The price table, parsed and validated once per process."""
    with Path(path).open(encoding="utf-8") as handle:
        return PriceTable.model_validate(yaml.safe_load(handle))


# --- amounts -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Money:
    """An amount per hour and per month (USD), whether it is an estimate, and what could not be priced.

    Hourly prices give an exact monthly amount (x hours per month); monthly prices an hourly one divided by it.
    """

    per_hour: Decimal = Decimal(0)
    per_month: Decimal = Decimal(0)
    estimate: bool = False
    #: Items that have no price in the table; they are not in the amount.
    missing: frozenset[str] = frozenset()

    @classmethod
    def hourly(cls, rate: Decimal, hours_per_month: int, *, estimate: bool = False) -> Money:
        return cls(rate, rate * hours_per_month, estimate)

    @classmethod
    def monthly(cls, amount: Decimal, hours_per_month: int, *, estimate: bool = False) -> Money:
        return cls(amount / hours_per_month, amount, estimate)

    @classmethod
    def unpriced(cls, item: str) -> Money:
        return cls(missing=frozenset({item}))

    def __add__(self, other: Money) -> Money:
        return Money(self.per_hour + other.per_hour, self.per_month + other.per_month,
                     self.estimate or other.estimate, self.missing | other.missing)

    def __mul__(self, factor: int | Decimal) -> Money:
        if factor == 0:
            return Money()
        return Money(self.per_hour * factor, self.per_month * factor, self.estimate, self.missing)

    @property
    def complete(self) -> bool:
        return not self.missing


def total(amounts: Iterable[Money]) -> Money:
    result = Money()
    for amount in amounts:
        result = result + amount
    return result


# --- capacity of a pool --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolCapacity:
    """What one node pool is made of, whether read from an environment file or from a synthesized stack."""

    name: str
    instance_types: tuple[str, ...]
    min_size: int
    desired_size: int
    max_size: int
    #: GPU model and GPUs per node; None on CPU pools (and ``gpus_per_node`` None for a type not in the catalogue).
    gpu_model: str | None = None
    gpus_per_node: int | None = 0
    #: ``time-slicing``, ``mig`` or ``exclusive``; None on CPU pools.
    sharing_mode: str | None = None
    #: Schedulable GPU resources one node advertises (``nvidia.com/gpu`` or ``nvidia.com/mig-<profile>``).
    resources_per_node: Mapping[str, int] = field(default_factory=dict)
    root_volume_gib: int | None = None
    capacity_type: str = "ON_DEMAND"
    purpose: tuple[str, ...] = ()

    @property
    def instance_type(self) -> str:
        """The type the pool is priced at: the first listed (on-demand node groups prefer them in order)."""
        return self.instance_types[0]

    @property
    def is_gpu(self) -> bool:
        return self.gpu_model is not None or bool(self.gpus_per_node)

    def nodes(self, scale: Scale) -> int:
        return {"min": self.min_size, "desired": self.desired_size, "max": self.max_size}[scale]

    def physical_gpus(self, scale: Scale) -> int | None:
        return None if self.gpus_per_node is None else self.gpus_per_node * self.nodes(scale)

    def schedulable(self, scale: Scale) -> dict[str, int]:
        return {resource: count * self.nodes(scale) for resource, count in sorted(self.resources_per_node.items())}

    @property
    def sharing(self) -> str:
        return describe_sharing(self.sharing_mode, self.resources_per_node, self.gpus_per_node)


def _profile_order(profile: str) -> tuple[int, str]:
    compute = re.match(r"(\d+)g\.", profile)
    return (-int(compute.group(1)) if compute else 0, profile)


def describe_sharing(mode: str | None, resources_per_node: Mapping[str, int], gpus_per_node: int | None) -> str:
    """How one GPU is shared, in words: ``time-slicing, 4 replicas``, ``MIG 3g.40gb + 2g.20gb + 2x 1g.10gb``,
    ``whole GPUs (exclusive)``; ``-`` without GPUs. Derived from the per-node resources, so a pool read from a
    stack reads the same."""
    if not mode:
        return "-"
    gpus = gpus_per_node or 0
    if mode == SharingMode.TIME_SLICING.value:
        units = resources_per_node.get(GPU_RESOURCE)
        return f"time-slicing, {units // gpus} replicas" if units and gpus else "time-slicing"
    if mode == SharingMode.EXCLUSIVE.value:
        return "whole GPUs (exclusive)"
    if mode == SharingMode.MIG.value:
        per_gpu = {r.removeprefix("nvidia.com/mig-"): n // gpus for r, n in resources_per_node.items()
                   if r.startswith("nvidia.com/mig-") and gpus}
        parts = [f"{count}x {profile}" if count > 1 else profile
                 for profile, count in sorted(per_gpu.items(), key=lambda item: _profile_order(item[0]))]
        return "MIG " + " + ".join(parts) if parts else "MIG"
    return mode


def pools_from_environment(environment: Environment) -> list[PoolCapacity]:
    """The environment's node pools, in file order, with the GPU resources ``node_resources`` gives each node."""
    pools = []
    for name, pool in environment.node_pools.items():
        pools.append(PoolCapacity(
            name=name, instance_types=tuple(pool.instance_types), min_size=pool.min_size,
            desired_size=pool.desired_size, max_size=pool.max_size,
            gpu_model=pool.gpu.model if pool.gpu else None, gpus_per_node=pool.instance.gpus,
            sharing_mode=pool.gpu.sharing.mode.value if pool.gpu else None,
            resources_per_node=node_resources(pool), root_volume_gib=pool.disk_size_gib,
            capacity_type=pool.capacity_type.value, purpose=tuple(pool.purpose)))
    return pools


# --- reading synthesized stacks (parsed cdk.tf.json) -----------------------------------------------------------------

def resources_of(stack: Mapping[str, Any], resource_type: str) -> dict[str, dict]:
    """A stack's resources of one type, by Terraform name."""
    return dict((stack.get("resource") or {}).get(resource_type) or {})


def _first(block: Any) -> dict:
    """A nested block as cdktf writes it: an object, or a one-element list of objects."""
    if isinstance(block, list):
        return block[0] if block and isinstance(block[0], dict) else {}
    return block if isinstance(block, dict) else {}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def referenced_name(reference: Any, resource_type: str) -> str | None:
    """The name of the ``resource_type`` resource a ``${<type>.<name>...}`` reference points at."""
    found = re.search(rf"\$\{{{re.escape(resource_type)}\.([A-Za-z0-9_-]+)", str(reference or ""))
    return found.group(1) if found else None


def pools_from_cluster_stack(stack: Mapping[str, Any]) -> list[PoolCapacity]:
    """The node pools of a synthesized cluster stack, by pool name: sizes and types from each
    ``aws_eks_node_group``, per-node GPU resources from its Auto Scaling group's node-template tags, the root volume
    from its launch template, GPUs per node from the catalogue."""
    catalogue = load_catalogue().instance_types
    tags = resources_of(stack, "aws_autoscaling_group_tag").values()
    templates = resources_of(stack, "aws_launch_template")
    resources_prefix = f"{AUTOSCALER_TEMPLATE_PREFIX}/resources/"
    pools = []
    for address, group in resources_of(stack, "aws_eks_node_group").items():
        labels = group.get("labels") or {}
        name = group.get("node_group_name") or labels.get(POOL_LABEL) or address
        scaling = _first(group.get("scaling_config"))
        types = tuple(group.get("instance_types") or ())
        resources = {}
        for tag in tags:
            key, value = _first(tag.get("tag")).get("key", ""), _first(tag.get("tag")).get("value")
            if referenced_name(tag.get("autoscaling_group_name"), "aws_eks_node_group") == address \
                    and key.startswith(resources_prefix) and (_int(value) or 0) > 0:
                # A zero (whole GPUs on a MIG pool) tells the autoscaler what the node does not offer.
                resources[key.removeprefix(resources_prefix)] = int(value)
        template = templates.get(referenced_name(_first(group.get("launch_template")).get("id"),
                                                 "aws_launch_template") or "", {})
        volume = _first(_first(template.get("block_device_mappings")).get("ebs")).get("volume_size")
        instance = catalogue.get(types[0]) if types else None
        gpus = instance.gpus if instance else None
        model = labels.get(GPU_MODEL_LABEL) or (instance.gpu_model if instance else None)
        pools.append(PoolCapacity(
            name=name, instance_types=types, min_size=_int(scaling.get("min_size")) or 0,
            desired_size=_int(scaling.get("desired_size")) or 0, max_size=_int(scaling.get("max_size")) or 0,
            gpu_model=model, gpus_per_node=gpus, sharing_mode=labels.get(GPU_SHARING_LABEL),
            resources_per_node=dict(sorted(resources.items())),
            root_volume_gib=_int(volume) if volume is not None else _int(group.get("disk_size")),
            capacity_type=group.get("capacity_type") or "ON_DEMAND"))
    return sorted(pools, key=lambda p: p.name)


def helm_releases(stack: Mapping[str, Any]) -> dict[str, dict]:
    """A stack's ``helm_release`` resources, by Terraform name."""
    return resources_of(stack, "helm_release")


#: The safe loader, in C where PyYAML has it (Helm values of the monitoring stack are large).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def release_values(release: Mapping[str, Any]) -> list[Any]:
    """The parsed documents of a release's ``values`` (plain YAML text in this platform)."""
    documents = []
    for text in release.get("values") or []:
        try:
            documents.append(yaml.load(text, Loader=_YAML_LOADER) if isinstance(text, str) else text)
        except yaml.YAMLError:
            continue
    return [d for d in documents if d is not None]


def release_manifests(release: Mapping[str, Any]) -> list[dict]:
    """The Kubernetes objects a ``raw``-chart release installs (its values' ``resources`` list), and those an Argo CD
    Application among them deploys (its ``templates``, at their default image tags); none for other charts."""
    manifests = []
    for document in release_values(release):
        items = document.get("resources") if isinstance(document, dict) else None
        if not isinstance(items, list):
            continue
        for item in items:
            if isinstance(item, dict) and item.get("kind") and item.get("apiVersion"):
                manifests.append(item)
                if item["kind"] == "Application":
                    manifests += application_manifests(item)
    return manifests


def application_manifests(application: Mapping[str, Any]) -> list[dict]:
    """What an Application whose chart source carries ``helm.valuesObject.templates`` deploys."""
    found = []
    for source in (application.get("spec") or {}).get("sources") or []:
        templates = ((source.get("helm") or {}).get("valuesObject") or {}).get("templates") or []
        found += [yaml.load(with_default_tags(text), Loader=_YAML_LOADER) for text in templates]
    return [m for m in found if isinstance(m, dict) and m.get("kind")]


def stack_manifests(stacks: Iterable[Mapping[str, Any]], *, mentioning: Sequence[str] = ()) -> Iterator[dict]:
    """The objects of every ``raw`` release of ``stacks``; with ``mentioning``, only of releases whose values text
    contains one of those strings (parsing large values is the slow part)."""
    for stack in stacks:
        for release in helm_releases(stack).values():
            text = "".join(v for v in release.get("values") or [] if isinstance(v, str))
            if not mentioning or any(word in text for word in mentioning):
                yield from release_manifests(release)


@dataclass(frozen=True)
class Database:
    identifier: str
    engine: str
    instance_class: str
    multi_az: bool
    allocated_gib: int
    storage_type: str


@dataclass(frozen=True)
class LoadBalancer:
    kind: Literal["alb", "nlb"]
    #: ``<namespace>/<name>`` of the Ingress (or ALB group) or the Service.
    source: str
    scheme: str


@dataclass(frozen=True)
class InfrastructureFacts:
    """What an environment's synthesized stacks create besides the node pools, as far as it costs money."""

    eks_clusters: int = 0
    nat_gateways: int = 0
    public_ipv4_addresses: int = 0
    #: (service, AZs) of each interface VPC endpoint.
    interface_endpoints: tuple[tuple[str, int], ...] = ()
    gateway_endpoints: tuple[str, ...] = ()
    databases: tuple[Database, ...] = ()
    efs_file_systems: int = 0
    load_balancers: tuple[LoadBalancer, ...] = ()
    kms_keys: int = 0
    secrets: int = 0


def _endpoint_service(service_name: str) -> str:
    return re.sub(r"^com\.amazonaws\.[a-z0-9-]+\.", "", service_name or "")


def load_balancers_of(manifests: Iterable[Mapping[str, Any]]) -> list[LoadBalancer]:
    """The AWS load balancers the AWS Load Balancer Controller makes for these objects: one ALB per Ingress of class
    ``alb`` (or per ``group.name``), one NLB per Service of type LoadBalancer."""
    found: dict[tuple[str, str], LoadBalancer] = {}
    for manifest in manifests:
        meta = manifest.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        spec = manifest.get("spec") or {}
        where = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        if manifest.get("kind") == "Ingress" and "alb" in (spec.get("ingressClassName"),
                                                           annotations.get("kubernetes.io/ingress.class")):
            group = annotations.get("alb.ingress.kubernetes.io/group.name")
            key = ("alb", f"group {group}" if group else where)
            found.setdefault(key, LoadBalancer("alb", key[1],
                                               annotations.get("alb.ingress.kubernetes.io/scheme", "internal")))
        elif manifest.get("kind") == "Service" and spec.get("type") == "LoadBalancer":
            found[("nlb", where)] = LoadBalancer(
                "nlb", where, annotations.get("service.beta.kubernetes.io/aws-load-balancer-scheme", "internal"))
    return [found[key] for key in sorted(found)]


def facts_from_stacks(stacks: Iterable[Mapping[str, Any]]) -> InfrastructureFacts:
    """Count what the stacks of one environment create: clusters, NAT gateways and their addresses, interface
    endpoints and their AZs, databases, file systems, load balancers (from the Kubernetes objects in the Helm
    releases), customer managed keys and secrets."""
    stacks = list(stacks)

    def every(resource_type: str) -> list[dict]:
        return [body for stack in stacks for body in resources_of(stack, resource_type).values()]

    interface, gateway = [], []
    for endpoint in every("aws_vpc_endpoint"):
        service = _endpoint_service(endpoint.get("service_name", ""))
        if endpoint.get("vpc_endpoint_type", "Gateway") == "Interface":
            interface.append((service, len(endpoint.get("subnet_ids") or [])))
        else:
            gateway.append(service)
    databases = [Database(str(db.get("identifier", "")), str(db.get("engine", "")), str(db.get("instance_class", "")),
                          bool(db.get("multi_az")), _int(db.get("allocated_storage")) or 0,
                          str(db.get("storage_type") or "gp2"))
                 for db in every("aws_db_instance")]
    return InfrastructureFacts(
        eks_clusters=len(every("aws_eks_cluster")), nat_gateways=len(every("aws_nat_gateway")),
        public_ipv4_addresses=len(every("aws_eip")), interface_endpoints=tuple(sorted(interface)),
        gateway_endpoints=tuple(sorted(gateway)), databases=tuple(sorted(databases, key=lambda d: d.identifier)),
        efs_file_systems=len(every("aws_efs_file_system")),
        load_balancers=tuple(load_balancers_of(stack_manifests(stacks, mentioning=("Ingress", "LoadBalancer")))),
        kms_keys=len(every("aws_kms_key")), secrets=len(every("aws_secretsmanager_secret")))


def environment_of_stack(stack_name: str, environments: Sequence[str]) -> str | None:
    """The environment a stack (``<env>-<layer>``) belongs to; the longest matching name wins."""
    matches = [e for e in environments if stack_name.startswith(f"{e}-")]
    return max(matches, key=len) if matches else None


def stacks_by_environment(stacks: Mapping[str, Mapping], environments: Sequence[str]) -> dict[str, dict[str, Mapping]]:
    grouped: dict[str, dict[str, Mapping]] = {e: {} for e in environments}
    for name in sorted(stacks):
        environment = environment_of_stack(name, environments)
        if environment is not None:
            grouped[environment][name] = stacks[name]
    return grouped


# --- cost ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CostLine:
    """A fixed cost of the environment: the same whatever the pools' sizes."""

    item: str
    quantity: Decimal
    unit: str
    price: PriceEntry | None
    cost: Money
    note: str = ""
    #: False for usage-priced items shown for reference (EFS storage): not in the totals.
    in_totals: bool = True


@dataclass(frozen=True)
class PoolCost:
    capacity: PoolCapacity
    price: PriceEntry | None
    #: One node of the pool, per hour and month.
    per_node: Money
    by_scale: Mapping[str, Money]
    note: str = ""


@dataclass(frozen=True)
class EnvironmentReport:
    name: str
    region: str
    prices: PriceTable
    pools: tuple[PoolCost, ...]
    #: gp3 root volumes of the pools' nodes, by scale.
    root_volumes: Mapping[str, Money]
    fixed: tuple[CostLine, ...]
    facts: InfrastructureFacts

    @property
    def priced_in_another_region(self) -> bool:
        return self.region != self.prices.region

    @property
    def fixed_total(self) -> Money:
        return total(line.cost for line in self.fixed if line.in_totals)

    def pools_total(self, scale: Scale) -> Money:
        return total(pool.by_scale[scale] for pool in self.pools)

    def total(self, scale: Scale) -> Money:
        return self.pools_total(scale) + self.root_volumes[scale] + self.fixed_total

    def physical_gpus(self, scale: Scale) -> int | None:
        counts = [pool.capacity.physical_gpus(scale) for pool in self.pools if pool.capacity.is_gpu]
        return None if any(c is None for c in counts) else sum(counts)

    def schedulable(self, scale: Scale) -> dict[str, int]:
        units: dict[str, int] = {}
        for pool in self.pools:
            for resource, count in pool.capacity.schedulable(scale).items():
                units[resource] = units.get(resource, 0) + count
        return dict(sorted(units.items()))


def _hourly(entry: PriceEntry | None, quantity: int | Decimal, item: str, hours: int, foreign: bool) -> Money:
    if entry is None:
        return Money.unpriced(item) if quantity else Money()
    return Money.hourly(entry.price, hours, estimate=entry.unverified or foreign) * quantity


def _monthly(entry: PriceEntry | None, quantity: int | Decimal, item: str, hours: int, foreign: bool) -> Money:
    if entry is None:
        return Money.unpriced(item) if quantity else Money()
    return Money.monthly(entry.price, hours, estimate=entry.unverified or foreign) * quantity


def _plural(count: int | Decimal, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def environment_report(name: str, region: str, pools: Sequence[PoolCapacity], facts: InfrastructureFacts,
                       prices: PriceTable) -> EnvironmentReport:
    """Price ``pools`` at each scale and the fixed items of ``facts``."""
    hours = prices.hours_per_month
    foreign = region != prices.region
    service = prices.service

    pool_costs = []
    for pool in pools:
        entry = prices.instances.get(pool.instance_type)
        per_node = _hourly(entry, 1, pool.instance_type, hours, foreign)
        note = ""
        if pool.capacity_type != "ON_DEMAND":
            per_node = Money(per_node.per_hour, per_node.per_month, True, per_node.missing)
            note = f"{pool.capacity_type.lower()} capacity priced on demand (an upper bound)"
        pool_costs.append(PoolCost(pool, entry, per_node, {s: per_node * pool.nodes(s) for s in SCALES}, note))

    root_volumes = {}
    for scale in SCALES:
        gib = sum((p.root_volume_gib or 0) * p.nodes(scale) for p in pools)
        root_volumes[scale] = _monthly(service("ebs_gp3_storage"), gib, "ebs_gp3_storage", hours, foreign)

    fixed = []

    def line(item: str, quantity: int | Decimal, unit: str, entry: PriceEntry | None, cost: Money, note: str = "",
             in_totals: bool = True) -> None:
        if quantity:
            fixed.append(CostLine(item, Decimal(quantity), unit, entry, cost, note, in_totals))

    line("EKS control plane", facts.eks_clusters, "cluster", service("eks_cluster"),
         _hourly(service("eks_cluster"), facts.eks_clusters, "eks_cluster", hours, foreign), "standard support")
    line("NAT gateways", facts.nat_gateways, "gateway", service("nat_gateway"),
         _hourly(service("nat_gateway"), facts.nat_gateways, "nat_gateway", hours, foreign),
         "data processing not included")
    line("Public IPv4 addresses", facts.public_ipv4_addresses, "address", service("public_ipv4_address"),
         _hourly(service("public_ipv4_address"), facts.public_ipv4_addresses, "public_ipv4_address", hours, foreign),
         "the NAT gateways' Elastic IPs")
    endpoint_azs = sum(azs for _, azs in facts.interface_endpoints)
    zones = sorted({azs for _, azs in facts.interface_endpoints})
    across = f" x {zones[0]} AZs" if len(zones) == 1 else ""
    free = f"; gateway endpoints ({', '.join(facts.gateway_endpoints)}) are free" if facts.gateway_endpoints else ""
    line("Interface VPC endpoints", endpoint_azs, "endpoint-AZ", service("interface_endpoint_az"),
         _hourly(service("interface_endpoint_az"), endpoint_azs, "interface_endpoint_az", hours, foreign),
         f"{_plural(len(facts.interface_endpoints), 'endpoint')} "
         f"({', '.join(s for s, _ in facts.interface_endpoints)}){across}{free}")
    for database in facts.databases:
        copies = 2 if database.multi_az else 1
        deployment = "Multi-AZ" if database.multi_az else "Single-AZ"
        entry = prices.databases.get(database.instance_class)
        line(f"RDS {database.engine} {database.instance_class}", copies, "instance", entry,
             _hourly(entry, copies, database.instance_class, hours, foreign),
             f"{database.identifier}, {deployment}" + (" (primary and standby)" if database.multi_az else ""))
        storage = service("rds_gp3_storage")
        gib = database.allocated_gib * copies
        cost = _monthly(storage, gib, "rds_gp3_storage", hours, foreign)
        if database.storage_type != "gp3":
            cost = Money(cost.per_hour, cost.per_month, True, cost.missing)
        line(f"RDS storage ({database.storage_type})", gib, "GB", storage, cost,
             f"{database.allocated_gib} GiB allocated" + (" x 2 (Multi-AZ)" if database.multi_az else "")
             + ("" if database.storage_type == "gp3" else "; priced as gp3 (an estimate)"))
    albs = [lb for lb in facts.load_balancers if lb.kind == "alb"]
    nlbs = [lb for lb in facts.load_balancers if lb.kind == "nlb"]
    for kind, found, key in (("Application Load Balancers", albs, "application_load_balancer"),
                             ("Network Load Balancers", nlbs, "network_load_balancer")):
        line(kind, len(found), "load balancer", service(key), _hourly(service(key), len(found), key, hours, foreign),
             ", ".join(f"{lb.source} ({lb.scheme})" for lb in found) + "; capacity units not included")
    line("KMS customer managed keys", facts.kms_keys, "key", service("kms_key"),
         _monthly(service("kms_key"), facts.kms_keys, "kms_key", hours, foreign), "requests not included")
    line("Secrets Manager secrets", facts.secrets, "secret", service("secrets_manager_secret"),
         _monthly(service("secrets_manager_secret"), facts.secrets, "secrets_manager_secret", hours, foreign),
         "API calls not included")
    efs = service("efs_standard_storage")
    line("EFS file systems", facts.efs_file_systems, "file system", efs, Money(estimate=efs.unverified or foreign),
         "no fixed charge (elastic throughput); storage is priced by use, not in the totals",
         in_totals=False)
    return EnvironmentReport(name, region, prices, tuple(pool_costs), root_volumes, tuple(fixed), facts)


def report_for(environment: Environment, stacks: Iterable[Mapping[str, Any]],
               prices: PriceTable | None = None) -> EnvironmentReport:
    """The report of one environment: its pools from the validated file, its fixed items from its stacks."""
    return environment_report(environment.name, environment.region, pools_from_environment(environment),
                              facts_from_stacks(stacks), prices or load_prices())


def report_from_stacks(name: str, stacks: Mapping[str, Mapping[str, Any]],
                       prices: PriceTable | None = None) -> EnvironmentReport | None:
    """The report of one environment read from its synthesized stacks only (no environment file, no Python of the
    revision that synthesized them); None when no stack holds node groups."""
    pools = [pool for stack in stacks.values() for pool in pools_from_cluster_stack(stack)]
    if not pools:
        return None
    region = ""
    for stack in stacks.values():
        for provider in (stack.get("provider") or {}).get("aws") or []:
            region = region or provider.get("region", "")
    prices = prices or load_prices()
    return environment_report(name, region or prices.region, sorted(pools, key=lambda p: p.name),
                              facts_from_stacks(stacks.values()), prices)


# --- summaries and formatting ----------------------------------------------------------------------------------------

def _rounded(amount: Decimal, places: int) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def round_usd(amount: Decimal, places: int = 2) -> float:
    """Half up, like a bill."""
    return float(_rounded(amount, places))


def format_usd(amount: Decimal, *, hourly: bool = False) -> str:
    """``1,234.57`` for months; for hours up to four decimals, at least two (``27.4471``, ``0.0225``, ``0.10``)."""
    if not hourly:
        return f"{_rounded(amount, 2):,.2f}"
    text = f"{_rounded(amount, 4):,.4f}"
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.rstrip('0').ljust(2, '0')}"


def format_money(money: Money, *, hourly: bool = False) -> str:
    """An amount for people: ``~`` before an estimate, ``+?`` after an amount that leaves unpriced items out."""
    text = format_usd(money.per_hour if hourly else money.per_month, hourly=hourly)
    return ("~" if money.estimate else "") + text + ("+?" if money.missing else "")


def format_resources(resources: Mapping[str, int]) -> str:
    return ", ".join(f"{r.removeprefix('nvidia.com/')} {n}" for r, n in resources.items()) or "-"


def money_json(money: Money) -> dict[str, Any]:
    return {"per_hour": round_usd(money.per_hour, 4), "per_month": round_usd(money.per_month, 2),
            "estimate": money.estimate, "missing_prices": sorted(money.missing)}


def summary(report: EnvironmentReport) -> dict[str, Any]:
    """The numbers a reviewer compares between two revisions: GPUs and schedulable units at each scale, and the
    cost at each scale (per month)."""
    return {
        "physical_gpus": {s: report.physical_gpus(s) for s in SCALES},
        "schedulable": {s: report.schedulable(s) for s in SCALES},
        "usd_per_month": {s: round_usd(report.total(s).per_month) for s in SCALES},
        "estimate": any(report.total(s).estimate for s in SCALES),
        "missing_prices": sorted(set().union(*(report.total(s).missing for s in SCALES))),
    }
