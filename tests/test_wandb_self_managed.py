"""The self-managed W&B server: its AWS side (MySQL, bucket, license secret, Pod Identity) and the custom resource
the W&B operator deploys it from.

The committed environments keep ``workloads.wandb.self_managed`` off, so the construct is synthesized here in a
stack of its own (``Testing.synth``), once per module, for a non-HA environment (dev) and an HA one (prod).
"""

import json

import pytest
import yaml
from cdktf import TerraformStack
from cdktf import Testing as CdktfTesting  # aliased: pytest would try to collect a name starting with "Test"
from pydantic import ValidationError

from platform_config.wandb_server import (
    BUCKET_COMPONENTS,
    LICENSE_KEY,
    LICENSE_SECRET,
    MYSQL_PASSWORD_KEY,
    MYSQL_SECRET,
    NAMESPACE,
    REDIS_PASSWORD_KEY,
    REDIS_SECRET,
    SERVER_CHART,
    WANDB_BASE_COMPONENTS,
    WandbServerRefs,
    custom_resource,
    secret_manifests,
    server_manifests,
    service_accounts,
)
from platform_config.wandb_settings import WandbDatabase, WandbServer
from tests_support import one, resources

KEY_ARN = "arn:aws:kms:eu-west-1:111111111111:key/data-key"
NODES_SG = "sg-nodes"
REFS = WandbServerRefs(bucket_name="mlops-dev-wandb-111111111111-eu-west-1", kms_key_arn=KEY_ARN,
                       database_host="mlops-dev-wandb.abc.eu-west-1.rds.amazonaws.com",
                       database_secret_arn="arn:aws:secretsmanager:eu-west-1:111111111111:secret:rds!db-1",
                       license_secret="arn:aws:secretsmanager:eu-west-1:111111111111:secret:mlops-dev/wandb-license")


def server_settings(env, **overrides) -> WandbServer:
    return WandbServer.model_validate({
        "host": f"wandb.{env.name}.example.com",
        "certificate_arn": f"arn:aws:acm:{env.region}:{env.account_id}:certificate/0000-1111", **overrides})


@pytest.fixture(scope="module")
def synthesized(environments):
    """GIVEN the AWS side of the server for dev (no HA, unprotected) and prod (HA, protected)."""
    from cdktf_cdktf_provider_aws.provider import AwsProvider

    from modules.data.wandb_server import WandbServerData

    out = {}
    for name in ("dev", "prod"):
        env = environments[name]
        stack = TerraformStack(CdktfTesting.app(), "test")
        AwsProvider(stack, "aws", region=env.region)
        WandbServerData(stack, "wandb-server", environment=env, server=server_settings(env), vpc_id="vpc-1",
                        subnet_ids=["subnet-a", "subnet-b"], client_security_group_id=NODES_SG,
                        kms_key_arn=KEY_ARN, logs_bucket_id="logs-bucket", cluster_name=env.cluster_name,
                        prevent_destroy=env.protection.prevent_destroy)
        out[name] = json.loads(CdktfTesting.synth(stack))
    return out


# --- AWS side -----------------------------------------------------------------------------------------------------

def test_the_database_is_private_mysql_encrypted_with_the_given_key_and_its_password_kept_by_rds(synthesized):
    database = one(synthesized["prod"], "aws_db_instance")
    assert database["engine"] == "mysql"
    assert database["engine_version"] == WandbDatabase().mysql_version
    assert database["storage_encrypted"] is True
    assert database["kms_key_id"] == KEY_ARN
    assert database["performance_insights_kms_key_id"] == KEY_ARN
    assert database["manage_master_user_password"] is True
    assert database["master_user_secret_kms_key_id"] == KEY_ARN
    assert "password" not in database
    assert database["publicly_accessible"] is False
    assert database["iam_database_authentication_enabled"] is True
    assert set(database["enabled_cloudwatch_logs_exports"]) >= {"error", "slowquery"}


def test_the_database_admits_only_the_nodes_on_3306_and_only_tls(synthesized):
    stack = synthesized["prod"]
    rule = one(stack, "aws_vpc_security_group_ingress_rule")
    assert (rule["from_port"], rule["to_port"], rule["referenced_security_group_id"]) == (3306, 3306, NODES_SG)
    group = one(stack, "aws_db_parameter_group")
    assert group["family"] == f"mysql{WandbDatabase().mysql_version}"
    assert {p["name"]: p["value"] for p in group["parameter"]}["require_secure_transport"] == "1"


def test_multi_az_and_deletion_protection_follow_the_environment(synthesized, environments):
    for name, stack in synthesized.items():
        env = environments[name]
        database = one(stack, "aws_db_instance")
        assert database["multi_az"] is env.high_availability, name
        assert database["deletion_protection"] is env.protection.prevent_destroy, name
        assert database["lifecycle"]["prevent_destroy"] is env.protection.prevent_destroy, name


def test_the_files_bucket_is_a_secure_bucket_named_by_the_scheme_with_cors_for_the_server_only(synthesized,
                                                                                               environments):
    env = environments["prod"]
    stack = synthesized["prod"]
    assert one(stack, "aws_s3_bucket")["bucket"] == f"mlops-prod-wandb-{env.account_id}-{env.region}"
    [rule] = one(stack, "aws_s3_bucket_server_side_encryption_configuration")["rule"]
    assert rule["apply_server_side_encryption_by_default"] == {"sse_algorithm": "aws:kms",
                                                                "kms_master_key_id": KEY_ARN}
    assert one(stack, "aws_s3_bucket_public_access_block")["restrict_public_buckets"] is True
    assert one(stack, "aws_s3_bucket_versioning")["versioning_configuration"]["status"] == "Enabled"
    assert one(stack, "aws_s3_bucket_logging")["target_bucket"] == "logs-bucket"
    [cors] = one(stack, "aws_s3_bucket_cors_configuration")["cors_rule"]
    assert cors["allowed_origins"] == ["https://wandb.prod.example.com"]
    assert set(cors["allowed_methods"]) == {"GET", "HEAD", "PUT"}


def test_the_license_secret_is_created_encrypted_and_without_a_value(synthesized):
    stack = synthesized["prod"]
    secret = one(stack, "aws_secretsmanager_secret")
    assert secret["name"] == "mlops-prod/wandb-license"
    assert secret["kms_key_id"] == KEY_ARN
    assert resources(stack, "aws_secretsmanager_secret_version") == {}


def test_the_role_may_use_only_its_bucket_and_the_key_only_through_s3(synthesized, environments):
    stack = synthesized["prod"]
    region = environments["prod"].region
    [policy] = [json.loads(body["policy"]) for body in resources(stack, "aws_iam_role_policy").values()]
    bucket = next(iter(resources(stack, "aws_s3_bucket")))
    for statement in policy["Statement"]:
        actions = statement["Action"]
        assert not any(action.startswith(("secretsmanager:", "logs:")) for action in actions), statement
        if any(action.startswith("kms:") for action in actions):
            assert statement["Resource"] == [KEY_ARN]
            assert statement["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}
        else:
            assert all(r.startswith(f"${{aws_s3_bucket.{bucket}.arn}}") for r in statement["Resource"]), statement
    writes = next(s for s in policy["Statement"] if "s3:PutObject" in s["Action"])
    assert writes["Resource"] == [f"${{aws_s3_bucket.{bucket}.arn}}/*"]


def test_every_w_and_b_service_account_that_uses_the_bucket_is_bound_to_the_one_role(synthesized):
    stack = synthesized["prod"]
    [role] = [name for name, body in resources(stack, "aws_iam_role").items()
              if "pods.eks.amazonaws.com" in body["assume_role_policy"]]
    associations = resources(stack, "aws_eks_pod_identity_association").values()
    assert {a["service_account"] for a in associations} == set(service_accounts())
    assert {a["namespace"] for a in associations} == {NAMESPACE}
    assert {a["role_arn"] for a in associations} == {f"${{aws_iam_role.{role}.arn}}"}
    assert "wandb-app" in service_accounts() and len(service_accounts()) == len(BUCKET_COMPONENTS) + 1


# --- in the cluster -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resource(environments):
    env = environments["prod"]
    return custom_resource(server_settings(env), region=env.region, refs=REFS)


def test_the_custom_resource_deploys_the_pinned_chart_into_the_operators_namespace(resource):
    assert (resource["apiVersion"], resource["kind"]) == ("apps.wandb.com/v1", "WeightsAndBiases")
    assert resource["metadata"]["namespace"] == NAMESPACE
    assert resource["spec"]["chart"] == SERVER_CHART == {"url": "https://charts.wandb.ai", "name": "operator-wandb",
                                                         "version": "0.43.8"}


def test_the_values_name_the_host_the_secrets_the_database_and_the_bucket(resource, environments):
    region = environments["prod"].region
    values = resource["spec"]["values"]["global"]
    assert values["host"] == "https://wandb.prod.example.com"
    assert values["licenseSecret"] == {"name": LICENSE_SECRET, "key": LICENSE_KEY}
    assert values["mysql"]["host"] == REFS.database_host
    assert (values["mysql"]["port"], values["mysql"]["database"]) == (3306, "wandb_local")
    assert values["mysql"]["passwordSecret"] == {"name": MYSQL_SECRET, "passwordKey": MYSQL_PASSWORD_KEY}
    assert values["bucket"] == {"provider": "s3", "name": REFS.bucket_name, "region": region, "kmsKey": KEY_ARN}
    assert "accessKey" not in values["bucket"]
    assert values["redis"]["secret"] == {"secretName": REDIS_SECRET, "secretKey": REDIS_PASSWORD_KEY}


def test_the_values_render_nothing_cluster_scoped_and_only_restricted_containers(resource):
    values = resource["spec"]["values"]
    assert values["app"]["internalJWTMap"] == []
    assert values["otel"]["install"] is False
    assert values["prometheus"]["install"] is False
    assert values["reloader"]["reloader"]["watchGlobally"] is False
    for component in WANDB_BASE_COMPONENTS:
        context = values[component]["securityContext"]
        assert context["capabilities"] == {"drop": ["ALL"]}, component
        assert context["allowPrivilegeEscalation"] is False, component


def test_the_ingress_is_an_internal_alb_with_tls_by_default(resource, environments):
    ingress = resource["spec"]["values"]["ingress"]
    annotations = ingress["annotations"]
    assert ingress["class"] == "alb"
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS":443}]'
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"].startswith("arn:aws:acm:")
    assert "alb.ingress.kubernetes.io/inbound-cidrs" not in annotations


def test_an_internet_facing_server_needs_tls_and_may_narrow_its_sources(environments):
    env = environments["prod"]
    with pytest.raises(ValidationError, match="certificate_arn"):
        WandbServer.model_validate({"host": "wandb.example.com", "scheme": "internet-facing"})
    server = server_settings(env, scheme="internet-facing", inbound_cidrs=["203.0.113.0/24", "198.51.100.0/24"])
    annotations = custom_resource(server, region=env.region, refs=REFS)["spec"]["values"]["ingress"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == "203.0.113.0/24,198.51.100.0/24"


@pytest.mark.parametrize("bad", [{"host": "https://wandb.example.com"}, {"host": "wandb"},
                                 {"certificate_arn": "arn:aws:iam::111111111111:server-certificate/x"}])
def test_hosts_are_dns_names_and_certificates_come_from_acm(environments, bad):
    with pytest.raises(ValidationError):
        server_settings(environments["prod"], **bad)


def test_a_storage_ceiling_below_the_start_is_refused():
    with pytest.raises(ValidationError, match="max_allocated_storage_gib 50 can't be less than"):
        WandbDatabase(allocated_storage_gib=100, max_allocated_storage_gib=50)


def test_the_mysql_password_is_synced_from_the_rds_secret_url_encoded():
    mysql = next(m for m in secret_manifests(REFS) if m["metadata"]["name"] == MYSQL_SECRET)
    assert mysql["metadata"]["namespace"] == NAMESPACE
    assert mysql["spec"]["data"] == [{"secretKey": "password",
                                      "remoteRef": {"key": REFS.database_secret_arn, "property": "password"}}]
    assert mysql["spec"]["target"]["template"]["data"] == {MYSQL_PASSWORD_KEY: "{{ .password | urlquery }}"}
    assert mysql["spec"]["secretStoreRef"] == {"kind": "SecretStore", "name": "namespace-secrets"}


def test_the_license_comes_from_its_secret_and_the_redis_password_is_generated_in_the_cluster():
    manifests = {(m["kind"], m["metadata"]["name"]): m for m in secret_manifests(REFS)}
    license_ = manifests[("ExternalSecret", LICENSE_SECRET)]
    assert license_["spec"]["data"] == [{"secretKey": LICENSE_KEY, "remoteRef": {"key": REFS.license_secret}}]
    redis = manifests[("ExternalSecret", REDIS_SECRET)]
    assert redis["spec"]["refreshPolicy"] == "CreatedOnce"
    assert redis["spec"]["dataFrom"][0]["sourceRef"]["generatorRef"]["kind"] == "Password"
    assert manifests[("Password", REDIS_SECRET)]["spec"]["symbols"] == 0  # it goes into a redis:// URL


def test_the_release_delivers_the_secrets_before_the_custom_resource_and_places_pods_on_the_cpu_pool(environments):
    env = environments["prod"]
    manifests = server_manifests(server_settings(env), region=env.region, refs=REFS)
    assert manifests[-1]["kind"] == "WeightsAndBiases"
    assert {m["metadata"]["namespace"] for m in manifests} == {NAMESPACE}
    assert manifests[-1]["spec"]["values"]["global"]["nodeSelector"] == {"mlops-platform/pool": "cpu"}


# --- the environment file (runs once platform_config.models carries workloads.wandb.server) -----------------------

def _weights_and_biases():
    from platform_config.models import WeightsAndBiases

    if "server" not in WeightsAndBiases.model_fields:
        pytest.skip("platform_config.models does not carry workloads.wandb.server yet")
    return WeightsAndBiases


def test_a_self_managed_server_needs_its_settings_and_base_url_must_be_its_url(environments):
    model = _weights_and_biases()
    server = {"host": "wandb.example.com",
              "certificate_arn": "arn:aws:acm:eu-west-1:111111111111:certificate/0000-1111"}
    assert model.model_validate({"self_managed": True, "base_url": "https://wandb.example.com",
                                 "server": server}).server.url == "https://wandb.example.com"
    with pytest.raises(ValidationError, match="server"):
        model.model_validate({"self_managed": True, "base_url": "https://wandb.example.com"})
    with pytest.raises(ValidationError, match="base_url"):
        model.model_validate({"self_managed": True, "server": server})


@pytest.fixture(scope="module")
def staging_with_wandb(tmp_path_factory):
    """The committed staging file with the self-managed server switched on, synthesized through the real app."""
    from cdktf import App

    from modules.app import build_platform
    from platform_config.loader import DEFAULT_ENV_DIR, load_environment

    data = yaml.safe_load((DEFAULT_ENV_DIR / "staging.yaml").read_text())
    data["workloads"]["wandb"] = {
        "self_managed": True, "base_url": "https://wandb.staging.example.com",
        "server": {"host": "wandb.staging.example.com", "certificate_arn":
                   "arn:aws:acm:us-east-1:222222222222:certificate/0123abcd-0000-4000-8000-00000000"}}
    folder = tmp_path_factory.mktemp("wandb")
    (folder / "staging.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    app = App(outdir=str(folder / "out"))
    build_platform(app, [load_environment(folder / "staging.yaml")])
    app.synth()
    return {layer: json.loads((folder / "out" / "stacks" / f"staging-{layer}" / "cdk.tf.json").read_text())
            for layer in ("data", "platform", "workloads")}


def test_switching_the_option_on_adds_the_server_across_the_layers(staging_with_wandb):
    data, platform, workloads = (staging_with_wandb[k] for k in ("data", "platform", "workloads"))
    engines = {db["engine"] for db in data["resource"]["aws_db_instance"].values()}
    assert engines == {"postgres", "mysql"}
    assert any("-wandb-" in b["bucket"] for b in data["resource"]["aws_s3_bucket"].values())
    releases = {r["name"]: r for r in workloads["resource"]["helm_release"].values()}
    assert releases["wandb-server"]["namespace"] == "wandb"
    assert releases["wandb-server"]["depends_on"] == [
        f"helm_release.{name}" for name, r in workloads["resource"]["helm_release"].items()
        if r["name"] == "wandb-operator"]
    kinds = {m["kind"] for m in yaml.safe_load(releases["wandb-server"]["values"][0])["resources"]}
    assert "WeightsAndBiases" in kinds and "ExternalSecret" in kinds
    store_release = next(r for r in platform["resource"]["helm_release"].values() if r["name"] == "platform-resources")
    stores = [m for m in yaml.safe_load(store_release["values"][0])["resources"] if m["kind"] == "SecretStore"]
    assert "wandb" in {m["metadata"]["namespace"] for m in stores}


def test_the_servers_namespace_reads_only_its_own_database_and_license(staging_with_wandb):
    from test_namespace_secrets import cross_namespace_reads, role_reads

    data = staging_with_wandb["data"]
    wandb_role = next(a for a, r in data["resource"]["aws_iam_role"].items() if r["name"].endswith("secrets-wandb"))
    assert role_reads(data)[wandb_role] == {"rds:wandb", "mlops-staging/wandb-license"}
    assert cross_namespace_reads(data, "staging") == {}
