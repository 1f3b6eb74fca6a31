"""The supply chain: what the nodes pull, and what the tools install.

- Every container image in the synthesized output (each Helm release's values, the Argo CD Applications' manifests,
  every kubernetes-provider object) is pinned: built here (immutable tags in our ECR), or pulled with a
  ``@sha256:`` digest, or at a tag whose image-lock entry says why it has no digest.
- Upstream images come through the environment account's ECR pull-through cache: a rule of the delivery stack for
  their registry (one ECR supports, with the credential ECR requires for it), and the nodes may fill the cache
  under its prefixes and nowhere else.
- ``make pin-images`` resolves digests through the registry API, all or nothing: offline it says which registry it
  could not reach and leaves the lock as it was.
- The checkov environment installs only files whose hashes are committed.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import urllib.error
from email.message import Message
from pathlib import Path

import pytest
import yaml

from iam_evaluation import ALLOW, Request, evaluate
from platform_config.helm_values import chart_catalogue
from platform_config.images import (
    IMAGE_LOCK_FILE,
    cached_upstream,
    ecr_registry,
    lock_key,
    parse_reference,
    pin_problem,
    platform_images,
    read_image_lock,
    upstream_images,
    upstream_location,
)
from tests_support import ENVIRONMENT_NAMES, by_path, resources
from tools.pin_images import API_HOSTS, pinned_dockerfile, resolve_lock
from tools.pin_images import __main__ as pin_images_cli
from tools.synth_diff.images import container_images

REPO_ROOT = Path(__file__).resolve().parent.parent

# What ECR accepts as a pull-through upstream (CreatePullThroughCacheRule, upstreamRegistryUrl), by the host image
# references name; Azure (<name>.azurecr.io) and ECR-to-ECR are the others. nvcr.io is not among them.
ECR_UPSTREAM_URL = {"docker.io": "registry-1.docker.io", "ghcr.io": "ghcr.io", "registry.gitlab.com":
                    "registry.gitlab.com", "public.ecr.aws": "public.ecr.aws", "quay.io": "quay.io",
                    "registry.k8s.io": "registry.k8s.io"}
# Upstreams ECR refuses a rule for without a Secrets Manager credential named ecr-pullthroughcache/...
ECR_NEEDS_CREDENTIAL = {"registry-1.docker.io", "ghcr.io", "registry.gitlab.com"}
CREDENTIAL_NAME = re.compile(r"^ecr-pullthroughcache/[a-zA-Z0-9/_+=.@-]+$")
ECR_PREFIX = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")


def registry_of(stack_name: str, stack_environments: dict) -> str:
    env = stack_environments[stack_name]
    return ecr_registry(env.account_id, env.region)


# --- every image in the output is pinned ---------------------------------------------------------------------------

def unpinned_images(stacks: dict, stack_environments: dict) -> list[str]:
    problems = []
    for name, stack in stacks.items():
        if name not in stack_environments:  # the repository's github stack runs no image
            continue
        registry = registry_of(name, stack_environments)
        problems += [f"{name}: {where}: {problem}" for where, reference in container_images(stack)
                     if (problem := pin_problem(reference, registry=registry))]
    return problems


def test_every_image_in_the_output_has_a_digest_or_a_lock_entry_that_says_why_not(stacks, stack_environments):
    assert sum(len(container_images(stack)) for stack in stacks.values()) > 0
    assert unpinned_images(stacks, stack_environments) == []


def _edit_values(stack: dict, release_name: str, edit) -> None:
    [release] = [r for r in resources(stack, "helm_release").values() if r["name"] == release_name]
    values = yaml.safe_load(release["values"][0])
    edit(values)
    release["values"] = [yaml.safe_dump(values)]


def test_the_pin_rule_finds_a_stripped_digest_an_unlocked_tag_and_a_kubernetes_object_put_back(
        stacks, stack_environments):
    broken = {name: copy.deepcopy(stacks[name]) for name in ("prod-platform", "prod-workloads")}
    locked = {key for key, entry in read_image_lock().items() if entry.digest}
    otel = "otel/opentelemetry-collector-contrib"
    assert any(key.startswith(f"{otel}:") for key in locked)

    def strip_digest(values):
        values["image"]["tag"] = values["image"]["tag"].split("@")[0]
    _edit_values(broken["prod-platform"], "opentelemetry-collector", strip_digest)

    def unlocked_dashboard_tag(values):
        deployment = next(m for m in values["resources"] if m["metadata"]["name"] == "optuna-dashboard"
                          and m["kind"] == "Deployment")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        container["image"] = parse_reference(container["image"])[0] + ":v0.22.0"
    _edit_values(broken["prod-workloads"], "training-resources", unlocked_dashboard_tag)

    broken["prod-workloads"]["resource"]["kubernetes_deployment_v1"] = {"debug": {"spec": [{"template": [{"spec": [
        {"container": [{"name": "debug", "image": "docker.io/library/busybox:1.36"}]}]}]}]}}
    problems = unpinned_images(broken, stack_environments)
    assert len(problems) == 3, problems
    assert [p.split(":")[0] for p in problems] == ["prod-platform", "prod-workloads", "prod-workloads"]
    assert otel in problems[0] and "has neither a @sha256: digest" in problems[0]
    assert "optuna-dashboard:v0.22.0 has neither" in problems[1]
    assert "kubernetes_deployment_v1.debug" in problems[2] and "busybox:1.36 has neither" in problems[2]


def test_the_lock_has_one_entry_for_each_listed_upstream_tag_and_none_else():
    listed = {lock_key(repository, tag) for repository, tags in upstream_images().items() for tag in tags}
    assert set(read_image_lock()) == listed


@pytest.mark.parametrize(("entry", "message"), [
    ({}, "give either digest or unresolved"),
    ({"unresolved": ""}, "give either digest or unresolved"),
    ({"digest": "sha256:" + "a" * 64, "unresolved": "offline"}, "give either digest or unresolved"),
    ({"digest": "sha256:abc"}, "is not sha256:<64 hex digits>"),
])
def test_a_lock_entry_without_a_digest_must_say_why(tmp_path, entry, message):
    lock = tmp_path / "image_lock.yaml"
    lock.write_text(yaml.safe_dump({"images": {"python:3.12.12-slim-bookworm": entry}}))
    with pytest.raises(ValueError, match=re.escape(message)):
        read_image_lock(lock)


# --- the pull-through cache ----------------------------------------------------------------------------------------

def pull_through_problems(stacks: dict, environment) -> list[str]:
    """What keeps an upstream image of ``environment`` from being pulled through its account's cache: a missing or
    wrong rule in the delivery stack, a registry ECR does not support or a credential it requires, and a node role
    that may not fill the cache or may write beyond it."""
    name, registry = environment.name, ecr_registry(environment.account_id, environment.region)
    delivery = stacks[f"{name}-delivery"]
    rules = {rule["ecr_repository_prefix"]: rule
             for rule in resources(delivery, "aws_ecr_pull_through_cache_rule").values()}
    secrets = {f"${{data.aws_secretsmanager_secret.{key}.arn}}": body["name"]
               for key, body in (delivery.get("data", {}).get("aws_secretsmanager_secret") or {}).items()}
    problems = []
    for prefix, rule in rules.items():
        url = rule["upstream_registry_url"]
        if url not in ECR_UPSTREAM_URL.values() or not 2 <= len(prefix) <= 30 or not ECR_PREFIX.match(prefix):
            problems.append(f"rule {prefix}: ECR refuses upstream {url} or this prefix")
        credential = secrets.get(rule.get("credential_arn") or "")
        if url in ECR_NEEDS_CREDENTIAL and not (credential and CREDENTIAL_NAME.match(credential)):
            problems.append(f"rule {prefix}: {url} needs a credential named ecr-pullthroughcache/..., has "
                            f"{rule.get('credential_arn')}")

    cached = []
    for stack_name, stack in stacks.items():
        if not stack_name.startswith(f"{name}-"):
            continue
        for where, reference in container_images(stack):
            upstream = cached_upstream(reference, registry=registry)
            if upstream is None:
                continue
            prefix, _, path = parse_reference(reference)[0].removeprefix(f"{registry}/").partition("/")
            host = upstream_location(upstream)[0]
            rule = rules.get(prefix)
            if rule is None or rule["upstream_registry_url"] != ECR_UPSTREAM_URL.get(host):
                problems.append(f"{stack_name}: {where}: no rule caches {host} under {prefix}/")
            cached.append(f"arn:aws:ecr:{environment.region}:{environment.account_id}:repository/{prefix}/{path}")
    if not cached:
        problems.append(f"{name}: no image comes through the pull-through cache")

    policy = json.loads(by_path(stacks[f"{name}-cluster"], "aws_iam_role_policy")["node-role/policy"]["policy"])
    for action in ("ecr:BatchImportUpstreamImage", "ecr:CreateRepository"):
        for arn in cached:
            if evaluate(policy, Request(action=action, resource=arn), resource_policy=False) != ALLOW:
                problems.append(f"the nodes may not {action} on {arn}")
        own = [f"arn:aws:ecr:{environment.region}:{environment.account_id}:repository/{repository}"
               for repository in platform_images()]
        elsewhere = [f"arn:aws:ecr:{environment.region}:{environment.account_id}:repository/not-a-cache/x",
                     *(f"arn:aws:ecr:{environment.region}:999999999999:repository/{prefix}/x" for prefix in rules)]
        for arn in own + elsewhere:
            if evaluate(policy, Request(action=action, resource=arn), resource_policy=False) == ALLOW:
                problems.append(f"the nodes may {action} on {arn}, outside the cache")
    return problems


@pytest.mark.parametrize("env_name", ENVIRONMENT_NAMES)
def test_upstream_images_come_through_a_cache_rule_the_nodes_may_fill_and_nothing_else(
        stacks, environments, env_name):
    assert pull_through_problems(stacks, environments[env_name]) == []


def test_the_cache_check_finds_a_missing_rule_a_missing_credential_and_a_node_role_open_to_everything(
        stacks, environments):
    env = environments["prod"]
    broken = {name: copy.deepcopy(stack) for name, stack in stacks.items() if name.startswith("prod-")}
    rules = resources(broken["prod-delivery"], "aws_ecr_pull_through_cache_rule")
    kubernetes = next(key for key, rule in rules.items() if rule["upstream_registry_url"] == "registry.k8s.io")
    del rules[kubernetes]
    docker_hub = next(rule for rule in rules.values() if rule["upstream_registry_url"] == "registry-1.docker.io")
    del docker_hub["credential_arn"]
    node_policy = by_path(broken["prod-cluster"], "aws_iam_role_policy")["node-role/policy"]
    policy = json.loads(node_policy["policy"])
    policy["Statement"][0]["Resource"] = "*"
    node_policy["policy"] = json.dumps(policy)
    problems = pull_through_problems(broken, env)
    assert any("registry-1.docker.io needs a credential" in p for p in problems), problems
    assert any("no rule caches registry.k8s.io under kubernetes/" in p for p in problems), problems
    assert any("outside the cache" in p and "repository/agents/crewai" in p for p in problems), problems


# --- make pin-images -------------------------------------------------------------------------------------------------

class FakeResponse(io.BytesIO):
    def __init__(self, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        super().__init__(body)
        self.headers = Message()
        for key, value in (headers or {}).items():
            self.headers[key] = value


def http_error(url: str, code: int, headers: dict[str, str]) -> urllib.error.HTTPError:
    message = Message()
    for key, value in headers.items():
        message[key] = value
    return urllib.error.HTTPError(url, code, "Unauthorized", message, io.BytesIO(b""))


class FakeRegistries:
    """Registries that answer like the OCI distribution API: 401 with a bearer challenge, a token, then the
    manifest with its digest. ``offline`` hosts fail to resolve, as they do here."""

    def __init__(self, offline: set[str] = frozenset()) -> None:
        self.offline, self.calls = offline, []

    @staticmethod
    def digest_of(url: str) -> str:
        return "sha256:" + hashlib.sha256(url.encode()).hexdigest()

    def __call__(self, request, timeout):
        url = request.full_url
        host = url.split("/")[2]
        self.calls.append(url)
        if host in self.offline:
            raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))
        if host == "auth.example":
            return FakeResponse(json.dumps({"token": "anonymous"}).encode())
        if request.get_header("Authorization") != "Bearer anonymous":
            raise http_error(url, 401, {"WWW-Authenticate": 'Bearer realm="https://auth.example/token",'
                                                            f'service="{host}"'})
        return FakeResponse(b"{}", {"Docker-Content-Digest": self.digest_of(url)})


def test_pin_images_offline_fails_in_one_line_and_leaves_the_lock_as_it_was(tmp_path, monkeypatch, capsys):
    lock = tmp_path / "image_lock.yaml"
    lock.write_bytes(IMAGE_LOCK_FILE.read_bytes())
    before = lock.read_bytes()
    monkeypatch.setattr("urllib.request.urlopen", FakeRegistries(offline={"registry-1.docker.io", "ghcr.io",
                                                                          "registry.k8s.io", "nvcr.io"}))
    assert pin_images_cli.main(["--lock", str(lock), "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert re.fullmatch(r"cannot reach [\w.-]+: .*Temporary failure in name resolution.*; lock unchanged\n", err), err
    assert lock.read_bytes() == before


def test_pin_images_writes_nothing_when_a_later_registry_fails(tmp_path, monkeypatch):
    lock = tmp_path / "image_lock.yaml"
    lock.write_bytes(IMAGE_LOCK_FILE.read_bytes())
    before = lock.read_bytes()
    hosts = [API_HOSTS.get(host, host) for host, _ in map(upstream_location, upstream_images())]
    later = next(host for host in hosts if host != hosts[0])
    fake = FakeRegistries(offline={later})
    monkeypatch.setattr("urllib.request.urlopen", fake)
    assert pin_images_cli.main(["--lock", str(lock), "--root", str(tmp_path)]) == 1
    assert fake.calls[0].startswith(f"https://{hosts[0]}/") and fake.calls[-1].startswith(f"https://{later}/")
    assert lock.read_bytes() == before


def test_pin_images_records_the_digest_each_registry_names_for_every_listed_tag(tmp_path, monkeypatch):
    fake = FakeRegistries()
    lock = resolve_lock(opener=fake)
    assert set(lock) == {lock_key(r, t) for r, tags in upstream_images().items() for t in tags}
    for key, entry in lock.items():
        repository, tag = key.rsplit(":", 1)
        host, path = upstream_location(repository)
        api = API_HOSTS.get(host, host)
        assert entry.digest == fake.digest_of(f"https://{api}/v2/{path}/manifests/{tag}")
        assert entry.unresolved is None and api in entry.source
    written = tmp_path / "image_lock.yaml"
    monkeypatch.setattr("urllib.request.urlopen", fake)
    (tmp_path / "images" / "agents" / "x").mkdir(parents=True)
    dockerfile = tmp_path / "images" / "agents" / "x" / "Dockerfile"
    base = next(key for key in lock if key.startswith("python:"))
    dockerfile.write_text(f"FROM {base}\nUSER 1000\n")
    assert pin_images_cli.main(["--lock", str(written), "--root", str(tmp_path)]) == 0
    assert read_image_lock(written) == lock
    assert dockerfile.read_text() == f"FROM {base}@{lock[base].digest}\nUSER 1000\n"


def test_a_dockerfile_follows_the_lock_digest_or_keeps_the_tag_where_the_lock_has_none():
    lock = read_image_lock()
    resolved = next(key for key, entry in lock.items() if entry.digest)
    unresolved = next(key for key, entry in lock.items() if entry.unresolved)
    stale = f"{resolved}@sha256:{'0' * 64}"
    assert pinned_dockerfile(f"FROM {stale} AS build\nFROM {unresolved}\n", lock) == \
        f"FROM {resolved}@{lock[resolved].digest} AS build\nFROM {unresolved}\n"


# --- the checkov environment ---------------------------------------------------------------------------------------

CHECKOV_REQUIREMENTS = REPO_ROOT / "tools" / "checkov-requirements.txt"
_PINNED_WITH_HASHES = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*==\S+(?:\s+--hash=sha256:[0-9a-f]{64})+")


def requirement_entries(text: str) -> list[str]:
    """One string per requirement, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [line.split(" #")[0].strip() for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def unhashed(text: str) -> list[str]:
    return [entry for entry in requirement_entries(text) if not _PINNED_WITH_HASHES.fullmatch(entry)]


def test_every_pin_of_the_checkov_environment_carries_its_hashes():
    entries = requirement_entries(CHECKOV_REQUIREMENTS.read_text())
    assert any(entry.startswith("checkov==") for entry in entries)
    assert unhashed(CHECKOV_REQUIREMENTS.read_text()) == []


def test_a_pin_without_a_hash_or_a_range_is_found():
    good = "idna==3.20 \\\n    --hash=sha256:" + "a" * 64 + "\n"
    assert unhashed(good) == []
    assert unhashed(good + "six==1.17.0\n") == ["six==1.17.0"]
    assert unhashed(good + "six>=1.0 --hash=sha256:" + "b" * 64 + "\n") != []


def install_commands() -> list[str]:
    """Every command in the Makefile, .ci/ and the GitHub workflows and actions that installs the checkov pins."""
    files = [REPO_ROOT / "Makefile", *(REPO_ROOT / ".ci").glob("*"), *(REPO_ROOT / ".github").rglob("*.yml")]
    commands = []
    for path in files:
        text = re.sub(r"\\\n\s*", " ", path.read_text())
        commands += [line.strip() for line in text.splitlines()
                     if "pip install" in line and "checkov-requirements.txt" in line]
    return commands


def test_the_checkov_environment_is_installed_with_require_hashes_and_no_deps():
    commands = install_commands()
    assert commands
    for command in commands:
        assert "--require-hashes" in command.split() and "--no-deps" in command.split(), command


# --- the README ------------------------------------------------------------------------------------------------------

def supply_chain_section() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    match = re.search(r"^## Supply chain\b.*?(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no 'Supply chain' section"
    return match[0]


def test_the_readme_explains_the_linkerd_channel_at_its_pin_and_how_to_pin_images():
    section = supply_chain_section()
    catalogue = chart_catalogue()
    for release in ("linkerd-crds", "linkerd-control-plane", "linkerd2-cni"):
        pin = catalogue[release]
        assert pin.repository in section and pin.version in section, release
    for needed in ("make pin-images", "platform_config/data/image_lock.yaml", "unresolved", "ecr-pullthroughcache/"):
        assert needed in section, needed
