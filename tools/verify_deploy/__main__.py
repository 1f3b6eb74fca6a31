"""``python -m tools.verify_deploy --env <env> [--timeout SECONDS] [--interval SECONDS]``

Writes a kubeconfig for the environment's cluster (``aws eks update-kubeconfig`` into a temporary file, with the
credentials of the calling identity, which must have cluster access), then reads the cluster with ``kubectl``
every ``--interval`` seconds until nothing is left to wait for (exit 0) or ``--timeout`` passes (exit 1, printing
what is not ready). Exit 2 on an unreadable environment or a failing ``kubectl``/``aws`` call.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from platform_config.loader import DEFAULT_ENV_DIR, EnvironmentFileError, load_environment
from platform_config.models import Environment
from tools.verify_deploy.checks import ClusterState, problems

Reader = Callable[[], ClusterState]


class ClusterReadError(Exception):
    """kubectl or aws failed: the cluster could not be read at all."""


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ClusterReadError(f"{' '.join(command[:3])} ... failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def kubectl_reader(kubeconfig: Path) -> Reader:
    def items(*args: str) -> list[dict]:
        return json.loads(_run(["kubectl", "--kubeconfig", str(kubeconfig), "get", *args, "-o", "json"]))["items"]

    def read() -> ClusterState:
        return ClusterState(workloads=items("deployments,statefulsets,daemonsets", "--all-namespaces"),
                            applications=items("applications.argoproj.io", "--all-namespaces"),
                            nodes=items("nodes"))
    return read


def wait_until_ready(environment: Environment, read: Reader, *, timeout: float, interval: float,
                     clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                     out=sys.stdout) -> int:
    """Read until nothing is left to wait for (0) or the timeout passes (1, printing what is not ready)."""
    deadline = clock() + timeout
    while True:
        left = problems(read(), environment)
        if not left:
            print(f"{environment.name}: every platform workload is ready, the Argo CD applications are Synced and "
                  "Healthy, and the GPU nodes advertise what their pools promise", file=out)
            return 0
        if clock() >= deadline:
            print(f"{environment.name}: not ready after {timeout:.0f} s ({len(left)} problem(s)):", file=out)
            for line in left:
                print(f"  {line}", file=out)
            return 1
        print(f"waiting for {len(left)} thing(s), e.g. {left[0]}", file=out)
        sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.verify_deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, help="environment name (a file of environments/)")
    parser.add_argument("--env-dir", type=Path, default=DEFAULT_ENV_DIR)
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait (default 900)")
    parser.add_argument("--interval", type=float, default=20, help="seconds between readings (default 20)")
    args = parser.parse_args(argv)
    try:
        environment = load_environment(args.env_dir / f"{args.env}.yaml")
    except EnvironmentFileError as error:
        print(error, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        kubeconfig = Path(scratch) / "kubeconfig"
        try:
            _run(["aws", "eks", "update-kubeconfig", "--name", environment.cluster_name, "--region",
                  environment.region, "--kubeconfig", str(kubeconfig)])
            return wait_until_ready(environment, kubectl_reader(kubeconfig), timeout=args.timeout,
                                    interval=args.interval)
        except ClusterReadError as error:
            print(error, file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
