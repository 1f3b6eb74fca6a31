"""Assembling the platform: every environment's layers in one cdktf App, synthesized once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cdktf import App

from modules.cluster.stack import ClusterStack
from modules.data.stack import DataStack
from modules.delivery.stack import DeliveryStack
from modules.github.stack import GithubStack
from modules.network.stack import NetworkStack
from modules.platform.stack import PlatformStack
from modules.workloads.stack import WorkloadsStack
from platform_config.github_settings import github_settings
from platform_config.models import Environment


def build_platform(app: App, environments: Sequence[Environment], *, with_github_stack: bool = True
                   ) -> dict[str, list]:
    """Add the layers of each environment, and the repository's GitHub settings, to ``app``; returns the stacks
    per environment name.

    ``with_github_stack`` (default True): only a synth of every environment file may make the github stack, which
    holds the GitHub environments of all of them (made from some, it would delete the others')."""
    stacks = {}
    # first: refuse bad settings before any stack exists
    settings = github_settings(environments) if with_github_stack else None
    for environment in environments:
        network = NetworkStack(app, environment=environment)
        layers, delivery = [], None
        if environment.delivery is not None:
            # Applied first: the cluster's access entries name the deploy and plan roles, which must exist, and
            # the cluster layer's GitHub runners use its GitHub connection.
            delivery = DeliveryStack(app, environment=environment)
            layers.append(delivery)
        cluster = ClusterStack(app, environment=environment, network=network.network,
                               autoscaling_role_arn=network.autoscaling_role.arn,
                               github_connection_arn=delivery.github_connection.arn if delivery else None)
        if delivery is not None:
            cluster.add_dependency(delivery)
        data = DataStack(app, environment=environment, network=network.network, cluster=cluster.cluster,
                         node_role_arn=cluster.node_role.arn)
        platform = PlatformStack(app, environment=environment, network=network, cluster=cluster, data=data)
        workloads = WorkloadsStack(app, environment=environment, cluster=cluster, data=data, platform=platform)
        stacks[environment.name] = [*layers, network, cluster, data, platform, workloads]
    if settings is not None:
        GithubStack(app, settings=settings)
    return stacks


def synthesize_platform(environments: Sequence[Environment], outdir: Path, *, with_github_stack: bool = True) -> None:
    """Synthesize every environment into ``outdir`` (``manifest.json``, ``stacks/<env>-<layer>/`` and, with
    ``with_github_stack``, ``stacks/github/``)."""
    app = App(outdir=str(outdir))
    build_platform(app, environments, with_github_stack=with_github_stack)
    app.synth()
