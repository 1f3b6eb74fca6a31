"""The catalogue of inference engines the platform deploys itself (``data/inference_engines.yaml``): their ports,
paths, arguments and users. Read by the environment rules (which engines serve gRPC) and by the manifests."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

ENGINES_FILE = Path(__file__).with_name("data") / "inference_engines.yaml"


@cache
def engine_catalogue() -> dict[str, Any]:
    with ENGINES_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def serves_grpc(engine: str) -> bool:
    """Whether the engine has a gRPC port (exposed through an NLB)."""
    return "grpc" in engine_catalogue()[engine]["ports"]
