"""Servers the benchmarks measure: started in a subprocess, used once they answer, stopped after."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
ECOMAP_SERVE = [sys.executable, "-m", "gis_service.cli", "serve"]
"""This service's command line (add ``--port`` and other options)."""
GROUPS: dict[str, int] = {}
"""Base URL of each running server -> its process group (its session: the server and its workers)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WORKER_DIED = re.compile(r"Child process \[\d+\] died")
STEADY_S = 6.0
"""uvicorn kills a worker that misses its 5 s health check: steady means no death for longer."""


def worker_deaths(log: Path) -> int:
    """How many uvicorn workers died (and were replaced) so far, from the server's log."""
    return len(WORKER_DIED.findall(log.read_text(errors="replace")))


def _workers_ready(text: str, workers: int) -> bool:
    """Whether ``workers`` uvicorn workers are alive and every worker started since the last
    death has finished its startup (a worker may die before it logs that it started)."""
    died = set(re.findall(r"Child process \[(\d+)\] died", text))
    alive = set(re.findall(r"Started server process \[(\d+)\]", text)) - died
    after_death = WORKER_DIED.split(text)[-1]
    pending = after_death.count("Started server process") - after_death.count("Application startup complete.")
    return len(alive) >= workers and pending <= 0


def wait_for_workers(log: Path, workers: int, timeout_s: float = 120.0) -> None:
    """Wait until all workers of a uvicorn server are up and none died for ``STEADY_S``, so
    every target is measured with all its workers (a loaded machine makes uvicorn restart
    workers whose startup misses the health check); warns when that does not happen in time."""
    deadline = time.monotonic() + timeout_s
    steady_since = None
    while time.monotonic() < deadline:
        if _workers_ready(log.read_text(errors="replace"), workers):
            steady_since = steady_since or (time.monotonic(), worker_deaths(log))
            if worker_deaths(log) != steady_since[1]:
                steady_since = None
            elif time.monotonic() - steady_since[0] >= STEADY_S:
                return
        else:
            steady_since = None
        time.sleep(0.3)
    print(f"   warning: {log.name}: not all {workers} workers steadily up after {timeout_s:.0f} s")


@contextmanager
def server(
    command: list[str],
    env: dict[str, str],
    port: int,
    log: Path | None = None,
    workers: int | None = None,
    start_timeout_s: float = 60.0,
) -> Iterator[str]:
    """Run ``command`` (serving on ``port``) until the block ends; yields its base URL once it
    answers HTTP (and, given ``workers``, once that many uvicorn workers are steadily up). Its
    output goes to ``log`` (a temporary file by default), shown if it fails to start; a server
    that does not stop within 20 s of SIGTERM is killed."""
    base = f"http://127.0.0.1:{port}"
    log = log or Path(tempfile.mkstemp(prefix="ecomap-bench-", suffix=".log")[1])
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                httpx.get(base + "/", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{command[0]} did not start on {base}:\n{log.read_text()}") from None
                time.sleep(0.3)
        if workers:
            wait_for_workers(log, workers)
        GROUPS[base] = process.pid
        yield base
    finally:
        GROUPS.pop(base, None)
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            print(f"   warning: {command[0]} did not stop within 20 s of SIGTERM; killed")
            os.killpg(process.pid, signal.SIGKILL)  # its own session: the server and its workers
            process.wait(timeout=20)
