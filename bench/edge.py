"""Debian's Varnish and nginx run locally with the shipped configuration (deploy/), for the
scale-out benchmark and the HTTP cache tests: each in the foreground with a work directory of
its own, its backend rewritten to the given ports, stopped when the block ends."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from bench.serving import ROOT, free_port

VCL = ROOT / "deploy" / "varnish" / "ecomap.vcl"
NGINX_SITE = ROOT / "deploy" / "nginx" / "ecomap.conf"


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


@contextlib.contextmanager
def varnish(
    backend_port: int, work: Path, *, ttl: str | None = None, edit: Callable[[str], str] | None = None
) -> Iterator[str]:
    """varnishd with deploy/varnish/ecomap.vcl (backend port, and the TTL if given, replaced;
    ``edit``: any other change of the VCL text); yields its base URL."""
    if shutil.which("varnishd") is None:
        raise RuntimeError("varnishd is missing: run `scripts/bootstrap.sh --test` (apt package varnish)")
    vcl = VCL.read_text().replace('.port = "8000";', f'.port = "{backend_port}";')
    if ttl is not None:
        vcl = vcl.replace("set beresp.ttl = 1h;", f"set beresp.ttl = {ttl};")
    if edit is not None:
        vcl = edit(vcl)
    work.mkdir(parents=True, exist_ok=True)
    (work / "ecomap.vcl").write_text(vcl)
    port = free_port()
    log = (work / "varnishd.log").open("w")
    process = subprocess.Popen(
        [
            *("varnishd", "-F", "-j", "none", "-n", str(work / "instance"), "-a", f"127.0.0.1:{port}"),
            *("-T", "none", "-f", str(work / "ecomap.vcl"), "-s", "malloc,256m"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"varnishd exited:\n{(work / 'varnishd.log').read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.request("BAN", base, headers={"X-Ban-Url": "^/none$"}, timeout=2).status_code == 200
        return False

    try:
        _wait(answers, "varnishd answering")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@contextlib.contextmanager
def nginx(instance_ports: list[int], work: Path) -> Iterator[int]:
    """nginx with deploy/nginx/ecomap.conf, its upstream set to the given instances; yields its port."""
    if shutil.which("nginx") is None:
        raise RuntimeError("nginx is missing: run `scripts/bootstrap.sh --test` (apt package nginx)")
    port = free_port()
    site = NGINX_SITE.read_text().replace("listen 127.0.0.1:8000;", f"listen 127.0.0.1:{port};")
    upstream = "".join(f"    server 127.0.0.1:{p} max_fails=3 fail_timeout=5s;\n" for p in instance_ports)
    site = re.sub(r"(?m)^    server 127\.0\.0\.1:800[12] .*\n", "", site)
    site = site.replace("upstream ecomap_instances {\n", "upstream ecomap_instances {\n" + upstream)
    work.mkdir(parents=True, exist_ok=True)
    (work / "ecomap.conf").write_text(site)
    temp = " ".join(f"{kind}_temp_path {work / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (work / "nginx.conf").write_text(
        f"worker_processes 1;\nerror_log {work / 'error.log'};\npid {work / 'nginx.pid'};\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n  access_log off;\n  {temp}\n  include {work / 'ecomap.conf'};\n}}\n"
    )
    process = subprocess.Popen(["nginx", "-p", str(work), "-c", str(work / "nginx.conf"), "-g", "daemon off;"])

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited:\n{(work / 'error.log').read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code < 600
        return False

    try:
        _wait(answers, "nginx answering")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)
