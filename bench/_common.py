"""Helpers shared by the bench scripts: timing, medians, free ports, waiting for servers."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]

# Measure as installed code runs: with bytecode caches (some shells turn them off).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# The CPUs this run may use, read once (a bench may pin itself to one of them later).
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def paired_medians(
    ours: Callable[[], object], baseline: Callable[[], object], repeat: int
) -> tuple[float, float]:
    """Median wall times (seconds) of ``ours()`` and ``baseline()``, runs interleaved.

    Alternating the two spreads the machine's drift over both; one untimed run of each
    comes first (file cache, bytecode caches).
    """
    ours()
    baseline()
    timed: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for run, samples in ((ours, timed[0]), (baseline, timed[1])):
            start = time.perf_counter()
            run()
            samples.append(time.perf_counter() - start)
    return statistics.median(timed[0]), statistics.median(timed[1])


def run_quiet(cmd: Sequence[str], **kwargs: object) -> None:
    """Run a command, failing loudly (with its output) if it fails."""
    result = subprocess.run(list(cmd), capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{result.stdout}\n{result.stderr}")


def wait_for_200(url: str, process: subprocess.Popen, timeout: float = 60.0) -> float:
    """Poll ``url`` until it answers 200; return the time it took. Fails if the process dies."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if process.poll() is not None:
            out = process.stdout.read() if process.stdout else ""
            sys.exit(f"server exited with {process.returncode} before answering {url}\n{out}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.005)
    sys.exit(f"{url} did not answer 200 within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    """Terminate a server process and wait for it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def on_cpu(index: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` pinning a child process to one CPU, so server and load never share one.

    Without pinning, the scheduler moves both around the machine's cores and the
    figures swing from run to run. Does nothing on machines with fewer than two CPUs.
    """
    if len(CPUS) < 2:
        return None
    cpu = CPUS[index]
    return lambda: os.sched_setaffinity(0, {cpu})


def report(rows: Sequence[tuple[str, float, float, float, str]]) -> bool:
    """Print ``(name, ours, baseline, target, op)`` rows with their ratio; True if all met.

    ``op`` is ``"<="`` when the ratio ours/baseline must not exceed ``target``, ``">="``
    when it must reach it.
    """
    ok = True
    print(f"{'measure':52} {'vibetuner':>11} {'baseline':>11} {'ratio':>7} {'target':>9}  result")
    for name, ours, base, target, op in rows:
        ratio = ours / base if base else float("inf")
        met = ratio <= target if op == "<=" else ratio >= target
        ok &= met
        goal, verdict = f"{op} {target}", "ok" if met else "MISSED"
        print(f"{name:52} {ours:11.4f} {base:11.4f} {ratio:7.2f} {goal:>9}  {verdict}")
    return ok
