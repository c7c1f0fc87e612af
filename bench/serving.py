"""Servers the benchmarks measure: started in a subprocess, used once they answer, stopped after."""

from __future__ import annotations

import os
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(command: list[str], env: dict[str, str], port: int, log: Path | None = None) -> Iterator[str]:
    """Run ``command`` (serving on ``port``) until the block ends; yields its base URL once it
    answers HTTP. Its output goes to ``log`` (a temporary file by default), shown if it fails to start."""
    base = f"http://127.0.0.1:{port}"
    log = log or Path(tempfile.mkstemp(prefix="ecomap-bench-", suffix=".log")[1])
    with log.open("w") as out:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{command[0]} did not start on {base}:\n{log.read_text()}") from None
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
