"""From ECR to a running pod through Git, checked link by link on the synthesized output, the image workflow and the
tag-writing tool: the images built are the ECR repositories; the tags are written with a credential whose
identity may do only that; the only way a platform image reaches the cluster is an Argo CD Application that reads
its tag, for the same repository, from the file the tool writes, in the repository and revision the root
application watches; and a prod-tier environment takes a tag only through a pull request."""

import json
from pathlib import Path

import pytest
import yaml

from platform_config.github_oidc import parse_subject
from platform_config.images import platform_images, platform_repository
from tests_support import application_manifests, resources
from tools.image_tags.__main__ import target_lines
from tools.image_tags.tags_file import set_tags

REPO_ROOT = Path(__file__).resolve().parent.parent
IMAGES_WORKFLOW = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "images.yml").read_text())


def delivered(environments):
    return [name for name, env in environments.items() if env.delivery is not None]


def target(env_name):
    return dict(line.split("=", 1) for line in target_lines(env_name))


def ecr_repositories(stacks, env_name):
    return {r["name"] for r in resources(stacks[f"{env_name}-delivery"], "aws_ecr_repository").values()}


def registry_host(environment):
    return f"{environment.account_id}.dkr.ecr.{environment.region}.amazonaws.com"


def raw_manifests(stack):
    for release in resources(stack, "helm_release").values():
        if release["chart"] == "raw":
            yield from yaml.safe_load(release["values"][0])["resources"]


def containers(manifest):
    pod = manifest.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def applications(stacks, env_name):
    return [m for m in raw_manifests(stacks[f"{env_name}-workloads"]) if m["kind"] == "Application"]


def gitops_job_step(name):
    [step] = [s for s in IMAGES_WORKFLOW["jobs"]["gitops"]["steps"] if s["name"] == name]
    return step


def trusted_subjects(role: dict) -> list[str]:
    return [value for statement in json.loads(role["assume_role_policy"])["Statement"]
            for condition in statement["Condition"].values()
            for key, values in condition.items() if key.endswith(":sub")
            for value in (values if isinstance(values, list) else [values])]


def role_by_kind(stack, kind):
    [(name, role)] = [(n, r) for n, r in resources(stack, "aws_iam_role").items()
                      if r["tags"].get("github-actions-role") == kind]
    return name, role


def test_the_images_pushed_and_tagged_are_the_ecr_repositories_the_applications_deploy(
        stacks, environments, synth_outdir):
    from tools.synth_diff.images import image_matrix

    for env_name in delivered(environments):
        repositories = ecr_repositories(stacks, env_name)
        assert repositories == set(platform_images()), env_name
        # The matrix is what images.yml pushes and what the gitops job writes into the tags file.
        matrix = {e["image"] for e in image_matrix(synth_outdir, env_name, list(environments))["include"]}
        host = registry_host(environments[env_name])
        deployed = {c["image"].removeprefix(f"{host}/").rsplit(":", 1)[0]
                    for application in applications(stacks, env_name)
                    for manifest in application_manifests(application) for c in containers(manifest)
                    if platform_repository(c["image"], registry=host)}
        assert matrix == deployed and deployed <= repositories, env_name
    workflow = IMAGES_WORKFLOW["jobs"]
    assert "build" in workflow["gitops"]["needs"]   # tags are written only once every image is pushed
    assert workflow["gitops"]["env"]["MATRIX"] == "${{ needs.target.outputs.matrix }}"
    assert workflow["build"]["strategy"]["matrix"] == "${{ fromJSON(needs.target.outputs.matrix) }}"


def test_the_tag_credentials_exist_and_their_identity_may_only_read_them(stacks, environments):
    for env_name in delivered(environments):
        stack = stacks[f"{env_name}-delivery"]
        [(secret_name, secret)] = [(n, s) for n, s in resources(stack, "aws_secretsmanager_secret").items()
                                   if s["name"] == target(env_name)["secret"]]
        role_name, role = role_by_kind(stack, "gitops-pull-request")
        _, push_role = role_by_kind(stack, "image-push")
        # Assumable only from the images workflow's jobs run from main, like the image-push role (which trusts its
        # approval environment besides); a job of another workflow or branch cannot read the App's key.
        subjects = [parse_subject(s) for s in trusted_subjects(role)]
        [push_subject] = [parse_subject(s) for s in trusted_subjects(push_role)]
        assert [(s.workflow, s.ref) for s in subjects if s] == [(push_subject.workflow, "refs/heads/main")]
        assert push_subject.ref == "refs/heads/main"
        assert not [a for a in resources(stack, "aws_iam_role_policy_attachment").values()
                    if a["role"].startswith(f"${{aws_iam_role.{role_name}.")]
        [policy] = [p for p in resources(stack, "aws_iam_role_policy").values()
                    if p["role"].startswith(f"${{aws_iam_role.{role_name}.")]
        statements = json.loads(policy["policy"])["Statement"]
        grants = {(s["Action"], s["Resource"]) for s in statements}
        assert grants == {("secretsmanager:GetSecretValue", f"${{aws_secretsmanager_secret.{secret_name}.arn}}"),
                          ("kms:Decrypt", secret["kms_key_id"])}
        [decrypt] = [s for s in statements if s["Action"] == "kms:Decrypt"]
        assert decrypt["Condition"] == {"StringEquals": {
            "kms:ViaService": f"secretsmanager.{environments[env_name].region}.amazonaws.com"}}


def test_the_workflow_reads_that_secret_with_that_role_and_mints_a_token_for_the_gitops_repository_only():
    target_step = next(s for s in IMAGES_WORKFLOW["jobs"]["target"]["steps"] if s.get("id") == "gitops")["run"]
    assert "role-arn --env \"$PLATFORM_ENVS\" --kind gitops-pull-request" in target_step
    assert "tools.image_tags target --env \"$PLATFORM_ENVS\"" in target_step
    role = gitops_job_step("Assume the gitops-pull-request role")["with"]["role-to-assume"]
    assert role == "${{ needs.target.outputs.gitops_role }}"
    assert gitops_job_step("Read the GitHub App")["env"]["SECRET"] == "${{ needs.target.outputs.gitops_secret }}"
    token = gitops_job_step("Token for the GitOps repository")["with"]
    assert token["owner"] == "${{ needs.target.outputs.gitops_owner }}"
    assert token["repositories"] == "${{ needs.target.outputs.gitops_name }}"
    assert {k: v for k, v in token.items() if k.startswith("permission-")} == {
        "permission-contents": "write", "permission-pull-requests": "write"}


def test_platform_images_reach_the_cluster_only_through_an_application_that_reads_their_tag_from_git(
        stacks, environments, tmp_path):
    for env_name in delivered(environments):
        environment = environments[env_name]
        host = registry_host(environment)
        repositories = ecr_repositories(stacks, env_name)
        where = target(env_name)
        root = yaml.safe_load(next(r["values"][0] for r in resources(stacks[f"{env_name}-platform"], "helm_release")
                                   .values() if r["name"] == "argocd-apps"))["applications"]["platform-root"]
        # What the tool writes after a build: the new tag for every image of the repository.
        tags_file = tmp_path / env_name / where["file"]
        set_tags(tags_file, dict.fromkeys(repositories, "probe-tag"))
        written = yaml.safe_load(tags_file.read_text())

        deployed = set()
        for manifest in raw_manifests(stacks[f"{env_name}-workloads"]):
            if manifest["kind"] != "Application":
                # Applied by Terraform: must not run a platform image, or it would bypass Git.
                assert not [c for c in containers(manifest) if platform_repository(c["image"], registry=host)], \
                    manifest
                continue
            chart, gitops = manifest["spec"]["sources"]
            # The value file is the tool's file, in the repository and revision the root application watches.
            assert chart["helm"]["valueFiles"] == [f"${gitops['ref']}/{where['file']}"]
            assert gitops["repoURL"] == root["source"]["repoURL"] == environment.platform.gitops.repository_url
            assert gitops["targetRevision"] == root["source"]["targetRevision"] == where["revision"]
            for rendered in application_manifests(manifest, written["imageTags"]):
                for container in containers(rendered):
                    image = container["image"]
                    if platform_repository(image, registry=host):
                        repository, tag = image.removeprefix(f"{host}/").rsplit(":", 1)
                        assert repository in repositories
                        assert tag == "probe-tag", image
                        deployed.add(repository)
        assert deployed, f"{env_name}: no Application deploys a platform image"


@pytest.mark.parametrize("step, updates", [("Commit to the watched revision", "direct"),
                                           ("Open a pull request", "pull-request")])
def test_a_tag_goes_straight_to_the_watched_revision_only_where_the_environment_says_direct(step, updates):
    condition = gitops_job_step(step)["if"]
    assert f"needs.target.outputs.gitops_updates == '{updates}'" in condition
    pushes_to_revision = [s for s in IMAGES_WORKFLOW["jobs"]["gitops"]["steps"]
                          if '"HEAD:$REVISION"' in s.get("run", "")]
    assert [s["name"] for s in pushes_to_revision] == ["Commit to the watched revision"]


def test_prod_tier_environments_take_new_tags_only_by_pull_request(environments):
    prod = [name for name, env in environments.items() if env.tier.value == "prod" and env.delivery is not None]
    assert prod
    for env_name in prod:
        assert target(env_name)["updates"] == "pull-request"
