"""The layers of an environment: one Terraform stack each, named ``<env>-<layer>``; and the one stack that is no
environment's, ``github`` (the repository's settings), present when any environment delivers from GitHub.

The one list of layers. ``modules/common/layer_stack.py`` refuses to build a stack of a layer not listed here for
the environment, and the policy gate expects exactly these stacks in a synthesized folder, so a layer added,
dropped or made optional is changed here, once.
"""

from __future__ import annotations

from enum import StrEnum

from platform_config.github_settings import GITHUB_STACK, github_stack_expected
from platform_config.models import Environment


class Layer(StrEnum):
    DELIVERY = "delivery"
    NETWORK = "network"
    CLUSTER = "cluster"
    DATA = "data"
    PLATFORM = "platform"
    WORKLOADS = "workloads"


def layers_of(environment: Environment) -> tuple[Layer, ...]:
    """The environment's layers: every layer, but delivery only when the environment has delivery settings."""
    return tuple(layer for layer in Layer if layer is not Layer.DELIVERY or environment.delivery is not None)


def stack_name(environment: Environment, layer: Layer | str) -> str:
    return f"{environment.name}-{layer}"


def expected_stacks(environments: list[Environment]) -> list[str]:
    """Every stack a synth of ``environments`` must produce."""
    stacks = [stack_name(environment, layer) for environment in environments for layer in layers_of(environment)]
    if github_stack_expected(environments):
        stacks.append(GITHUB_STACK)
    return stacks
