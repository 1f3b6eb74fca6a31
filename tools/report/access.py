"""Who reaches what, per environment: the data stores and their users, and the request flow (load balancers to the
model servers, in-cluster calls between workloads), each drawn so that no edge runs past an unrelated node."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from platform_config.report import referenced_name, resources_of
from tools.report.mermaid import Flowchart, node_id
from tools.report.view import EnvironmentView, Workload, meshed

_WRITE_ACTIONS = re.compile(r"^s3:(Put|Delete|Abort|Restore|Replicate)", re.IGNORECASE)


#: Edges per data-store diagram: each edge brings its own copy of the user, one rank holds them all.
MAX_STORE_USES = 12


def data_stores(view: EnvironmentView) -> list[str]:
    data = view.stack("data")
    buckets = resources_of(data, "aws_s3_bucket")
    file_systems = resources_of(data, "aws_efs_file_system")
    access_points = resources_of(data, "aws_efs_access_point")
    databases = resources_of(data, "aws_db_instance")
    secrets = resources_of(data, "aws_secretsmanager_secret")
    if not (buckets or file_systems or databases or secrets):
        return []
    stores: dict[tuple[str, str], str] = {}  # (resource type, name) -> node id
    store_nodes: dict[str, str] = {}  # node id -> label

    def path_of(body: Mapping[str, Any]) -> str:
        return ((body.get("//") or {}).get("metadata") or {}).get("path", "")

    identities = {}
    for name, body in view.every("aws_eks_pod_identity_association").items():
        identities[referenced_name(body.get("role_arn"), "aws_iam_role") or name] = \
            (body.get("namespace", ""), body.get("service_account", ""))
    for name, body in sorted(buckets.items()):
        purpose = path_of(body).split("/")[1].removeprefix("bucket-") if "/" in path_of(body) else name
        lock = ", object lock" if body.get("object_lock_enabled") else ""
        stores[("aws_s3_bucket", name)] = node_id("s3", purpose)
        store_nodes[node_id("s3", purpose)] = f"S3 {purpose}{lock}<br/>{body.get('bucket', '')}"
    for name, body in sorted(file_systems.items()):
        points = sorted(_first_path(ap) for ap in access_points.values() if name in json.dumps(ap))
        identifier = node_id("efs", name)
        store_nodes[identifier] = f"EFS {(body.get('tags') or {}).get('Name', '')}<br/>access points " \
                                  f"{', '.join(points)}"
        stores[("aws_efs_file_system", name)] = identifier
        for point, ap in access_points.items():
            if name in json.dumps(ap):
                stores[("aws_efs_access_point", point)] = identifier
    for name, body in sorted(databases.items()):
        deployment = "Multi-AZ" if body.get("multi_az") else "Single-AZ"
        stores[("aws_db_instance", name)] = node_id("rds", name)
        store_nodes[node_id("rds", name)] = (f"RDS {body.get('engine', '')} {body.get('engine_version', '')}<br/>"
                                             f"{body.get('instance_class', '')}, {deployment}, "
                                             f"{body.get('allocated_storage', '')} GiB {body.get('storage_type', '')}")
    if secrets:
        store_nodes["secrets"] = f"Secrets Manager<br/>{len(secrets)} secrets"
        for name in secrets:
            stores[("aws_secretsmanager_secret", name)] = "secrets"

    def referenced(text: str) -> list[tuple[str, str]]:
        return [(kind, name) for (kind, name) in stores if f"{kind}.{name}" in text or f"{kind}{name}" in text]

    users: dict[str, tuple[str, str]] = {}  # node id -> (label, shape)
    edges: dict[tuple[str, str], set[str]] = {}  # (user, store) -> how it uses it
    for body in view.every("aws_iam_role_policy").values():
        role = referenced_name(body.get("role"), "aws_iam_role")
        if role not in identities:
            continue
        namespace, account = identities[role]
        source = node_id("id", namespace, account)
        users[source] = (f"{namespace}/{account}<br/>Pod Identity", "stadium")
        try:
            statements = json.loads(body.get("policy") or "{}").get("Statement") or []
        except ValueError:
            continue
        for statement in statements:
            actions = statement.get("Action") or []
            actions = [actions] if isinstance(actions, str) else actions
            targets = statement.get("Resource") or []
            for kind, name in referenced(json.dumps(targets)):
                if kind == "aws_db_instance" and "master_user_secret" in json.dumps(targets):
                    mode = "reads its credentials"
                elif kind == "aws_s3_bucket":
                    mode = "read-write" if any(_WRITE_ACTIONS.match(a) for a in actions) else "read"
                elif kind == "aws_secretsmanager_secret":
                    mode = "reads secrets"
                else:
                    mode = "uses"
                edges.setdefault((source, stores[(kind, name)]), set()).add(mode)
    for release in view.releases:
        for kind, name in referenced(release.text):
            source = node_id("rel", release.namespace, release.name)
            users[source] = (f"release {release.name}<br/>in {release.namespace}", "release")
            edges.setdefault((source, stores[(kind, name)]), set()).add("configured with")
    connected = {user for user, _ in edges}
    unconnected = sorted(f"{namespace}/{account}" for namespace, account in set(identities.values())
                         if node_id("id", namespace, account) not in connected)
    # Drawn per store: each use gets its own copy of the user, next to the store, so no edge runs past another
    # user's node and every store's users read as one group.
    unused = [store_nodes[s].split("<br/>")[0] for s in store_nodes if not any(t == s for _, t in edges)]
    groups: list[list[str]] = [[]]
    for store in (s for s in store_nodes if any(t == s for _, t in edges)):
        uses = sum(1 for _, target in edges if target == store)
        if groups[-1] and sum(1 for _, t in edges if t in groups[-1]) + uses > MAX_STORE_USES:
            groups.append([])
        groups[-1].append(store)
    charts: list[str] = []
    for group in groups:
        chart = Flowchart("LR")
        with chart.subgraph("cluster", "in the cluster"):
            for (user, store), _ in sorted(edges.items(), key=lambda e: (group.index(e[0][1])
                                                                          if e[0][1] in group else -1, e[0][0])):
                if store in group:
                    chart.node(f"{user}__{store}", *users[user])
        with chart.subgraph("data", f"data layer ({view.name}-data)"):
            for store in group:
                chart.node(store, store_nodes[store], "db")
        for (user, store), modes in sorted(edges.items(), key=lambda e: (group.index(e[0][1])
                                                                          if e[0][1] in group else -1, e[0][0])):
            if store in group:
                if "read-write" in modes:
                    modes.discard("read")
                chart.edge(f"{user}__{store}", store, ", ".join(sorted(modes)))
        charts += [*chart.render(), ""]
    others = (f" Pod Identity roles that use no data store: {', '.join(unconnected)}." if unconnected else "") + \
        (f" Stores no role or release uses: {', '.join(unused)}." if unused else "")
    return ["### Data stores", "",
            "Who uses which store, store by store: Pod Identity roles (namespace/service account) by the actions "
            "their policies allow, and Helm releases whose values name a store (endpoints, buckets, file system, "
            "credentials). A user of several stores appears once beside each." + others, "", *charts]


def _first_path(access_point: Mapping[str, Any]) -> str:
    root = access_point.get("root_directory") or {}
    root = root[0] if isinstance(root, list) else root
    return root.get("path", "")


def request_flow(view: EnvironmentView) -> list[str]:
    services = {(m["metadata"].get("namespace", ""), m["metadata"].get("name", "")): m
                for _, m in view.manifests if m["kind"] == "Service"}
    ingresses = sorted((m for _, m in view.manifests if m["kind"] == "Ingress"),
                       key=lambda m: (m["metadata"].get("namespace", ""), m["metadata"]["name"]))
    balanced = sorted((s for s in services.values() if (s.get("spec") or {}).get("type") == "LoadBalancer"),
                      key=lambda m: (m["metadata"].get("namespace", ""), m["metadata"]["name"]))
    callers = [w for w in view.workloads if w.calls]
    if not (ingresses or balanced or callers):
        return []
    namespaces = view.namespaces()

    def ports(service: Mapping[str, Any]) -> str:
        return ", ".join(str(p.get("port")) for p in (service.get("spec") or {}).get("ports") or [])

    def selected(service: Mapping[str, Any]) -> list[Workload]:
        selector = (service.get("spec") or {}).get("selector") or {}
        namespace = service["metadata"].get("namespace", "")
        return [w for w in view.workloads if w.namespace == namespace and selector
                and all(w.labels.get(k) == v for k, v in selector.items())]

    def target(namespace: str, name: str, members: dict[str, dict[str, str]]) -> list[str]:
        """The nodes a call to Service ``name`` reaches: the workloads it selects (the Service named in their
        label), else the Service itself, else the release of that name."""
        service = services.get((namespace, name))
        if service is None:
            release = next((r for r in view.releases if r.namespace == namespace and r.name == name), None)
            label = f"release {name}" + (f" ({release.chart})" if release else "")
            members.setdefault(namespace, {})[node_id("svc", namespace, name)] = label
            return [node_id("svc", namespace, name)]
        workloads = selected(service)
        if not workloads:
            members.setdefault(namespace, {})[node_id("svc", namespace, name)] = f"Service {name} :{ports(service)}"
            return [node_id("svc", namespace, name)]
        for workload in workloads:
            label = members.setdefault(namespace, {}).get(workload.identifier, workload.describe())
            line = f"Service {name} :{ports(service)}"
            members[namespace][workload.identifier] = label if line in label else f"{label}<br/>{line}"
        return [w.identifier for w in workloads]

    def draw(chart: Flowchart, members: dict[str, dict[str, str]], grouped: bool = True) -> None:
        """The namespaces' nodes, each namespace a subgraph (``grouped``) or named in its nodes' labels."""
        for namespace, nodes in sorted(members.items()):
            mesh = ", Linkerd mesh (mTLS)" if meshed(namespaces.get(namespace, {})) else ""
            if grouped:
                with chart.subgraph(node_id("flow", namespace), f"namespace {namespace}{mesh}"):
                    for identifier, label in sorted(nodes.items()):
                        chart.node(identifier, label)
            else:
                for identifier, label in sorted(nodes.items()):
                    chart.node(identifier, f"namespace {namespace}{mesh}<br/>{label}")

    sections = ["### Request flow", ""]
    if ingresses or balanced:
        chart = Flowchart("LR")
        members: dict[str, dict[str, str]] = {}
        edges: list[tuple[str, str, str]] = []
        for ingress in ingresses:
            meta, spec = ingress["metadata"], ingress.get("spec") or {}
            annotations = meta.get("annotations") or {}
            scheme = annotations.get("alb.ingress.kubernetes.io/scheme", "internal")
            kind = "ALB" if "alb" in (spec.get("ingressClassName"), annotations.get("kubernetes.io/ingress.class")) \
                else "Ingress"
            identifier = chart.node(node_id("lb", meta.get("namespace", ""), meta["name"]),
                                    f"{kind}, {scheme}<br/>Ingress {meta.get('namespace', '')}/{meta['name']}",
                                    "hexagon")
            for rule in spec.get("rules") or []:
                for path in ((rule.get("http") or {}).get("paths")) or []:
                    backend = ((path.get("backend") or {}).get("service") or {}).get("name")
                    if backend:
                        for node in target(meta.get("namespace", ""), backend, members):
                            edges.append((identifier, node, (rule.get("host") or "") + path.get("path", "")))
        for service in balanced:
            meta = service["metadata"]
            annotations = meta.get("annotations") or {}
            scheme = annotations.get("service.beta.kubernetes.io/aws-load-balancer-scheme", "internal")
            identifier = chart.node(node_id("lb", meta.get("namespace", ""), meta["name"]),
                                    f"NLB, {scheme}<br/>Service {meta.get('namespace', '')}/{meta['name']} "
                                    f":{ports(service)}", "hexagon")
            for workload in selected(service):
                members.setdefault(workload.namespace, {}).setdefault(workload.identifier, workload.describe())
                edges.append((identifier, workload.identifier, ""))
        draw(chart, members)
        for source, target_node, label in dict.fromkeys(edges):
            chart.edge(source, target_node, label)
        sections += ["Load balancers made by the AWS Load Balancer Controller in the public subnets, open only to "
                     "the client networks the environment names (`clients` of `workloads.inference.http` and "
                     "`.tcp`; scheme internal or internet-facing), with target type ip: straight to the pods, whose "
                     "Linkerd proxies admit the load balancers' subnets and no other address range. An arrow is "
                     "labelled with the host and path it routes.",
                     "", *chart.render(), ""]
    if callers:
        chart = Flowchart("LR")
        members = {}
        groups: dict[tuple[str, tuple], list[Workload]] = {}
        for workload in callers:
            groups.setdefault((workload.namespace, workload.calls), []).append(workload)
        edges = []
        for (namespace, calls), workloads in sorted(groups.items()):
            kinds = sorted({w.kind for w in workloads})
            identifier = node_id("callers", namespace, *[w.name for w in workloads])
            label = workloads[0].describe() if len(workloads) == 1 else \
                f"{', '.join(kinds)}s {', '.join(w.name for w in workloads)}"
            members.setdefault(namespace, {})[identifier] = label
            by_target: dict[str, list[str]] = {}
            for variable, target_namespace, name in calls:
                for node in target(target_namespace, name, members):
                    by_target.setdefault(node, []).append(variable)
            edges += [(identifier, node, ", ".join(variables)) for node, variables in by_target.items()]
        # Callers and callees in different namespaces: two subgraph borders and a label would share one gap.
        draw(chart, members, grouped=False)
        for source, target_node, label in edges:
            chart.edge(source, target_node, label)
        sections += ["In-cluster calls: the cluster URLs the workloads are configured with (environment variables), "
                     "workloads with the same calls drawn as one node.", "", *chart.render(), ""]
    return sections
