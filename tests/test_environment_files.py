"""The committed environment files describe what the design asks of dev, staging and prod (pure Python)."""

from platform_config.models import NatStrategy, SharingMode

DESIGN_POOLS = {
    "cpu": ({"m5.2xlarge", "m5.4xlarge"}, None),
    "a100-timeslice": ({"p4de.24xlarge"}, ("A100-80GB", SharingMode.TIME_SLICING)),
    "a100-mig": ({"p4de.24xlarge"}, ("A100-80GB", SharingMode.MIG)),
    "h100-timeslice": ({"p5.48xlarge"}, ("H100-80GB", SharingMode.TIME_SLICING)),
}


def test_every_environment_has_the_four_pools_of_the_design_and_any_other_gives_whole_gpus(environments):
    assert set(environments) == {"dev", "staging", "prod"}
    for env in environments.values():
        assert set(env.node_pools) >= set(DESIGN_POOLS), env.name
        for name in set(env.node_pools) - set(DESIGN_POOLS):
            assert env.node_pools[name].gpu.sharing.mode is SharingMode.EXCLUSIVE, (env.name, name)
        for name, (types, gpu) in DESIGN_POOLS.items():
            pool = env.node_pools[name]
            assert set(pool.instance_types) <= types, (env.name, name)
            assert (None if pool.gpu is None else (pool.gpu.model, pool.gpu.sharing.mode)) == gpu, (env.name, name)


def test_sharing_follows_the_design_four_replicas_on_a100_two_on_h100_and_a_balanced_mig_layout(environments):
    for env in environments.values():
        assert env.node_pools["a100-timeslice"].gpu.sharing.replicas == 4
        assert env.node_pools["h100-timeslice"].gpu.sharing.replicas == 2
        assert env.node_pools["a100-mig"].gpu.sharing.layout == {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}


def test_prod_is_highly_available_in_three_azs_with_a_nat_gateway_each(environments):
    prod = environments["prod"]
    assert prod.high_availability
    assert len(prod.availability_zones) == 3
    assert prod.network.nat_gateways is NatStrategy.ONE_PER_AZ
    assert prod.protection.prevent_destroy
    assert prod.cluster.public_access_cidrs == []


def test_dev_is_cheap_two_azs_one_nat_and_gpu_pools_that_idle_at_zero(environments):
    dev = environments["dev"]
    assert len(dev.availability_zones) == 2
    assert dev.network.nat_gateways is NatStrategy.SINGLE
    assert all(pool.min_size == 0 and pool.desired_size == 0 for pool in dev.gpu_pools().values())
