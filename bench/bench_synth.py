"""Benchmark the full synth with the lazy provider loader against eager imports (run by `make bench`).

Runs ``python main.py`` (all environments) ``--runs`` times per mode, alternating lazy and eager, each run in a
fresh process (the import cost is paid per process) with its own ``CDKTF_OUTDIR``. For each run it measures:

* wall: from spawning the child to reaping it;
* cpu: user + sys of the child *and* of the descendants it waited for, i.e. python plus the node jsii kernel
  (the kernel is python's child and python waits for it at exit), from ``os.wait4``;
* tree peak RSS: the largest sum of resident memory (VmRSS) over the whole process tree (python + node),
  sampled from /proc every ``--sample-ms`` ms (a short spike between two samples can be missed);
* max process RSS: ``ru_maxrss`` from ``os.wait4``, the peak of the single largest process of the tree.

It prints every run, the medians per mode and the ratio lazy / eager, then checks that every run wrote the
same bytes to every ``cdk.tf.json`` and ``manifest.json`` (exit status 1 if not, or if a run failed).
Not a test: timings depend on the machine. Linux only (/proc, wait4).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODES = ("lazy", "eager")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True)
class Run:
    mode: str
    wall_s: float
    cpu_s: float
    tree_peak_mb: float
    max_process_mb: float
    outputs: dict[str, str]  # relative path -> sha256 of cdk.tf.json / manifest.json


def main() -> int:
    args = _parse_args()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        for index in range(args.runs):
            for mode in MODES:
                run = _run_once(args, mode, Path(tmp))
                if run is None:
                    return 1
                runs.append(run)
                print(
                    f"run {index + 1}/{args.runs} {mode:5}  wall {run.wall_s:6.2f} s  cpu {run.cpu_s:6.2f} s  "
                    f"tree peak {run.tree_peak_mb:6.0f} MB  max process {run.max_process_mb:6.0f} MB",
                    flush=True,
                )
    _print_summary(runs)
    return 0 if _outputs_identical(runs) else 1


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per mode (default 3)")
    parser.add_argument("--main", type=Path, default=REPO / "main.py", help="synth entrypoint (default: main.py)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the runs (default: this one)")
    parser.add_argument("--envs", default=None, help="PLATFORM_ENVS for the runs (default: every environment)")
    parser.add_argument("--sample-ms", type=float, default=10.0, help="/proc sampling interval (default 10 ms)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not args.main.is_file():
        parser.error(f"{args.main} does not exist")
    return args


def _run_once(args: argparse.Namespace, mode: str, tmp: Path) -> Run | None:
    """One synth in a fresh process; returns None (after printing its output) if it failed."""
    # Every run writes to the same path, so absolute paths in the output (a local backend) cannot differ.
    outdir = tmp / "cdktf.out"
    shutil.rmtree(outdir, ignore_errors=True)
    env = {**os.environ, "CDKTF_OUTDIR": str(outdir), "PLATFORM_PROVIDER_LOADER": mode}
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    if args.envs is not None:
        env["PLATFORM_ENVS"] = args.envs
    log = tmp / "run.log"
    with open(log, "wb") as output:
        start = time.perf_counter()
        child = subprocess.Popen(
            [args.python, str(args.main)], cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        sampler = _TreeSampler(child.pid, args.sample_ms / 1000)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        sampler.stop()
    if child.returncode != 0:
        print(
            f"{mode} run failed with exit status {child.returncode}:\n{log.read_text(errors='replace')}",
            file=sys.stderr,
        )
        return None
    outputs = _hash_outputs(outdir)
    if not outputs:
        print(f"{mode} run wrote no cdk.tf.json / manifest.json under {outdir}", file=sys.stderr)
        return None
    return Run(
        mode=mode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        tree_peak_mb=sampler.peak_kb / 1024,
        max_process_mb=usage.ru_maxrss / 1024,
        outputs=outputs,
    )


class _TreeSampler(threading.Thread):
    """Samples the summed VmRSS of a process and all its descendants; keeps the peak (KB)."""

    def __init__(self, root: int, interval_s: float) -> None:
        super().__init__(daemon=True)
        self._root = root
        self._interval = interval_s
        self._done = threading.Event()
        self.peak_kb = 0

    def run(self) -> None:
        while not self._done.is_set():
            self.peak_kb = max(self.peak_kb, sum(_rss_kb(pid) for pid in _process_tree(self._root)))
            self._done.wait(self._interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


def _process_tree(root: int) -> list[int]:
    pids, pending = [], [root]
    while pending:
        pid = pending.pop()
        pids.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
        except OSError:
            continue  # exited meanwhile
    return pids


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def _hash_outputs(outdir: Path) -> dict[str, str]:
    files = [*outdir.rglob("cdk.tf.json"), *outdir.rglob("manifest.json")]
    return {str(path.relative_to(outdir)): hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(files)}


def _print_summary(runs: list[Run]) -> None:
    print("\nmedians (lazy / eager = ratio):")
    for label, unit, value in (
        ("wall", "s", lambda r: r.wall_s),
        ("cpu (python + node)", "s", lambda r: r.cpu_s),
        ("tree peak RSS", "MB", lambda r: r.tree_peak_mb),
        ("max process RSS", "MB", lambda r: r.max_process_mb),
    ):
        lazy, eager = (statistics.median(value(r) for r in runs if r.mode == mode) for mode in MODES)
        print(f"  {label:20} {lazy:8.2f} {unit} / {eager:8.2f} {unit} = {lazy / eager:.2f}")


def _outputs_identical(runs: list[Run]) -> bool:
    reference = runs[0].outputs
    differing = sorted(
        {
            path
            for run in runs
            for path in reference.keys() | run.outputs.keys()
            if reference.get(path) != run.outputs.get(path)
        }
    )
    if differing:
        print(f"\noutputs differ between runs/modes in {len(differing)} file(s): {', '.join(differing[:10])}")
        return False
    print(f"\noutputs byte-identical across all {len(runs)} runs, lazy and eager: yes ({len(reference)} files)")
    return True


if __name__ == "__main__":
    sys.exit(main())
