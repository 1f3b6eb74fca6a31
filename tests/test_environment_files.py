"""The committed environment files keep the design's promises per tier (pure Python): a new file of a tier must
keep them too. Field and cross-field rules that hold for every file are model validators
(tests/test_environment_rules.py); these are the design choices each tier makes on top of them."""

from platform_config.models import NatStrategy, Tier
from tests_support import ENVIRONMENT_NAMES


def of_tier(environments, tier: Tier):
    return [env for env in environments.values() if env.tier is tier]


def test_the_environments_are_exactly_the_files_of_the_environments_folder(environments):
    assert sorted(environments) == ENVIRONMENT_NAMES
    assert {env.tier for env in environments.values()} == set(Tier), "every tier should have an environment"


def test_every_environment_has_a_cpu_pool_for_the_platform_tools(environments):
    for env in environments.values():
        assert any(pool.gpu is None and pool.min_size > 0 for pool in env.node_pools.values()), env.name


def test_prod_tier_environments_are_highly_available_in_three_azs_with_a_nat_gateway_each(environments):
    for env in of_tier(environments, Tier.PROD):
        assert env.high_availability, env.name
        assert len(env.availability_zones) >= 3, env.name
        assert env.network.nat_gateways is NatStrategy.ONE_PER_AZ, env.name
        assert env.protection.prevent_destroy, env.name
        assert env.cluster.public_access_cidrs == [], env.name


def test_dev_tier_environments_are_cheap_one_nat_and_gpu_pools_that_idle_at_zero(environments):
    for env in of_tier(environments, Tier.DEV):
        assert env.network.nat_gateways is NatStrategy.SINGLE, env.name
        assert all(pool.min_size == 0 and pool.desired_size == 0 for pool in env.gpu_pools().values()), env.name
