"""Every container image the platform runs exists: it is built here (``images/<repository>/``, pushed by
images.yml under the one version the synth accepts) or it is an upstream image listed, with its tag, in
platform_config/data/upstream_images.yaml, pulled through the account's pull-through cache at the digest the image
lock records. The images built here run as a numeric non-root user and answer the probes their pods call."""

from __future__ import annotations

import copy
import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from platform_config.github_settings import GITHUB_STACK
from platform_config.images import (
    ecr_registry,
    image_problem,
    mirrored_image,
    parse_reference,
    pin_problem,
    platform_images,
    platform_repository,
    pull_through_rules,
    split_reference,
    upstream_images,
    upstream_location,
    upstream_problem,
    with_default_tags,
)
from tests_support import application_manifests, resources
from tools.synth_diff.images import container_images, image_matrix

REPO_ROOT = Path(__file__).resolve().parent.parent
IMAGES = REPO_ROOT / "images"


def environment_of(stack_name: str, environments: dict) -> str:
    return next(name for name in environments if stack_name.startswith(f"{name}-"))


def image_problems(stacks: dict, environments: dict) -> list[str]:
    problems = []
    for stack_name, stack in stacks.items():
        if stack_name == GITHUB_STACK:  # the repository's settings: no container runs from it
            continue
        env = environments[environment_of(stack_name, environments)]
        registry = ecr_registry(env.account_id, env.region)
        problems += [f"{stack_name}: {where}: {problem}" for where, reference in container_images(stack)
                     if (problem := image_problem(reference, registry=registry))]
    return problems


def test_every_container_image_of_every_stack_is_built_here_at_its_pushed_tag_or_a_listed_upstream_image(
        stacks, environments):
    assert sum(len(container_images(stack)) for stack in stacks.values()) > 0
    assert image_problems(stacks, environments) == []


def _edit_release_values(stack: dict, release_name: str, edit) -> None:
    [release] = [r for r in resources(stack, "helm_release").values() if r["name"] == release_name]
    values = yaml.safe_load(release["values"][0])
    edit(values)
    release["values"] = [yaml.safe_dump(values)]


def test_the_rule_finds_a_commit_tag_an_unlisted_image_and_a_chart_default_put_back(stacks, environments):
    broken = {name: copy.deepcopy(stacks[name]) for name in ("prod-workloads", "prod-platform")}

    def commit_tag_and_unlisted_sidecar(values):
        # The agent runtimes are an Argo CD Application: edit the crewai Deployment among its templates.
        application = next(m for m in values["resources"] if m["metadata"]["name"] == "agent-runtimes")
        templates = application["spec"]["sources"][0]["helm"]["valuesObject"]["templates"]
        index = next(i for i, text in enumerate(templates) if "kind: Deployment" in text and "name: crewai" in text)
        agent = yaml.safe_load(with_default_tags(templates[index]))
        containers = agent["spec"]["template"]["spec"]["containers"]
        containers[0]["image"] = containers[0]["image"].rsplit(":", 1)[0] + ":3f2a1c9e"
        containers.append({"name": "debug", "image": "busybox:1.36"})
        templates[index] = yaml.safe_dump(agent)

    _edit_release_values(broken["prod-workloads"], "image-applications", commit_tag_and_unlisted_sidecar)
    _edit_release_values(broken["prod-platform"], "opentelemetry-collector", lambda v: v["image"].pop("tag"))
    problems = image_problems(broken, environments)
    assert len(problems) == 3, problems
    version = platform_images()["agents/crewai"].version
    assert f"'3f2a1c9e' is not the tag images.yml pushes for agents/crewai; allowed: '{version}'" in problems[0]
    assert "busybox:1.36 is neither built here" in problems[1]
    assert "otel/opentelemetry-collector-contrib:<chart default>" in problems[2]


@pytest.mark.parametrize("repository", sorted(r for r in upstream_images()
                                              if upstream_location(r)[0] in pull_through_rules()))
def test_an_upstream_image_is_accepted_only_through_the_pull_through_cache_at_a_listed_tag(repository):
    registry = "111111111111.dkr.ecr.eu-west-1.amazonaws.com"
    mirrored = mirrored_image(repository, registry=registry)
    assert image_problem(mirrored, registry=registry) is None
    name, tag, digest = parse_reference(mirrored)
    assert "is not listed" in image_problem(f"{name}:latest", registry=registry)
    assert "pulled from" in image_problem(f"{repository}:{tag}", registry=registry)
    if digest:
        other = "sha256:" + "0" * 64
        assert "the lock records" in image_problem(f"{name}:{tag}@{other}", registry=registry)


# --- build contexts -----------------------------------------------------------------------------------------------

def build_contexts() -> set[str]:
    return {str(dockerfile.parent.relative_to(IMAGES)) for dockerfile in IMAGES.rglob("Dockerfile")}


def dockerfile(repository: str) -> str:
    return (IMAGES / repository / "Dockerfile").read_text()


def directives(text: str, name: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", text)
    return [line.split(None, 1)[1].strip() for line in joined.splitlines()
            if line.strip().upper().startswith(f"{name} ")]


def test_every_image_built_here_has_its_build_context_and_its_ecr_repository(stacks):
    assert build_contexts() == set(platform_images())
    delivery = [stack for name, stack in stacks.items() if name.endswith("-delivery")]
    assert delivery
    for stack in delivery:
        assert {r["name"] for r in resources(stack, "aws_ecr_repository").values()} == set(platform_images())


@pytest.mark.parametrize("repository", sorted(platform_images()))
def test_every_build_context_starts_from_a_listed_upstream_image_at_an_exact_tag(repository):
    bases = [line.split()[0] for line in directives(dockerfile(repository), "FROM")]
    assert bases
    for base in bases:
        name, tag, digest = parse_reference(base)
        assert tag not in (None, "latest"), base
        assert upstream_problem(name, tag, digest) is None, base
        # Pinned as the image lock says: at its digest, or at the tag alone where the lock says why it has none.
        assert pin_problem(base, registry="example.invalid") is None, base


def image_user(repository: str) -> int:
    *_, user = directives(dockerfile(repository), "USER")
    assert re.fullmatch(r"\d+(:\d+)?", user), f"{repository}: USER {user} is not numeric"
    return int(user.split(":")[0])


def pods_of(stack: dict) -> list[dict]:
    pods = []
    for release in resources(stack, "helm_release").values():
        if release["chart"] == "raw":
            objects = yaml.safe_load(release["values"][0])["resources"]
            # What an Argo CD Application among them deploys, at its default image tags.
            objects += [m for a in objects if a["kind"] == "Application" for m in application_manifests(a)]
            pods += [m["spec"]["template"]["spec"] for m in objects if m["kind"] in ("Deployment", "StatefulSet")]
    return pods


def platform_containers(stacks: dict, environments: dict) -> list[tuple[str, dict, dict]]:
    """(repository, pod spec, container) for every container that runs an image built here."""
    found = []
    for name, stack in stacks.items():
        if not name.endswith("-workloads"):
            continue
        env = environments[environment_of(name, environments)]
        registry = ecr_registry(env.account_id, env.region)
        for pod in pods_of(stack):
            for container in pod["containers"]:
                repository = platform_repository(container["image"], registry=registry)
                if repository is not None:
                    found.append((repository, pod, container))
    return found


def test_images_built_here_run_as_a_numeric_non_root_user_the_same_as_their_pods(stacks, environments):
    """The kubelet admits a runAsNonRoot container only if it can tell the user is not root: a numeric USER."""
    for repository in platform_images():
        assert image_user(repository) != 0, repository
    running = platform_containers(stacks, environments)
    assert running
    for repository, pod, container in running:
        run_as = container.get("securityContext", {}).get("runAsUser", pod["securityContext"].get("runAsUser"))
        assert run_as == image_user(repository), (repository, container["name"])


def probed_ports(container: dict) -> set[tuple[str, int]]:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    probes = [container[p]["httpGet"] for p in ("startupProbe", "readinessProbe", "livenessProbe") if p in container]
    return {(probe["path"], ports.get(probe["port"], probe["port"])) for probe in probes}


def test_images_built_here_expose_the_ports_their_probes_call(stacks, environments):
    for repository, _, container in platform_containers(stacks, environments):
        exposed = {int(port.split("/")[0]) for line in directives(dockerfile(repository), "EXPOSE")
                   for port in line.split()}
        assert {port for _, port in probed_ports(container)} <= exposed, repository


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_status(url: str, deadline: float) -> int:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_agent_images_answer_the_health_probes_their_pods_call(stacks, environments):
    """Starts each agent app (as its Dockerfile's CMD does, on another port) and calls every probe of its pods."""
    probes: dict[str, set[tuple[str, int]]] = {}
    for repository, _, container in platform_containers(stacks, environments):
        if (IMAGES / repository / "app.py").is_file():
            probes.setdefault(repository, set()).update(probed_ports(container))
    assert probes
    for repository, calls in probes.items():
        assert directives(dockerfile(repository), "CMD") == ['["python", "/app/app.py"]'], repository
        image_port = {int(value) for line in directives(dockerfile(repository), "ENV")
                      for key, value in re.findall(r"(\w+)=(\S+)", line) if key == "PORT"}
        assert {port for _, port in calls} == image_port, repository
        port = free_port()
        server = subprocess.Popen([sys.executable, str(IMAGES / repository / "app.py")],
                                  env={"PORT": str(port), "PATH": "/usr/bin:/bin"}, stderr=subprocess.DEVNULL)
        try:
            for path, _ in calls:
                assert get_status(f"http://127.0.0.1:{port}{path}", time.monotonic() + 10) == 200, (repository, path)
            assert get_status(f"http://127.0.0.1:{port}/nowhere", time.monotonic() + 10) == 404
        finally:
            server.terminate()
            server.wait(timeout=10)


# --- the image workflow's matrix ------------------------------------------------------------------------------------

def test_the_workflow_matrix_builds_every_image_an_environment_runs_from_its_registry_at_its_version(
        synth_outdir, stacks, environments):
    for name in environments:
        matrix = image_matrix(synth_outdir, name, list(environments))["include"]
        built = {(entry["image"], entry["tag"]) for entry in matrix}
        running = {(repository, split_reference(container["image"])[1])
                   for repository, _, container in platform_containers({f"{name}-workloads":
                                                                        stacks[f"{name}-workloads"]}, environments)}
        assert running and running <= built, name
        for image, tag in built:
            assert (IMAGES / image / "Dockerfile").is_file()
            assert tag == platform_images()[image].version


def test_the_workflow_matrix_refuses_a_tag_the_synth_would_not_accept(synth_outdir, environments, tmp_path):
    broken = tmp_path / "cdktf.out"
    subprocess.run(["cp", "-r", str(synth_outdir), str(broken)], check=True)
    manifest = json.loads((broken / "manifest.json").read_text())
    path = broken / manifest["stacks"]["dev-workloads"]["synthesizedStackPath"]
    # The agent runtimes' Application names the tag as its template's default.
    version = platform_images()["agents/crewai"].version
    path.write_text(path.read_text().replace(f'agents/crewai\\" \\"{version}\\"', 'agents/crewai\\" \\"3f2a1c9e\\"'))
    with pytest.raises(ValueError, match=r"'3f2a1c9e' is not the tag images\.yml pushes for agents/crewai"):
        image_matrix(broken, "dev", list(environments))
