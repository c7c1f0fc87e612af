"""CPU time a benchmark measurement costs, counted two ways, and the time stolen meanwhile.

- *machine*: all the CPU time this machine spent (``/proc/stat``) less the load generator's
  (wrk or pgbench, children of this process): the server, PostgreSQL and the kernel's
  network work — but also whatever else runs on the machine, so only meaningful on an
  otherwise idle one;
- *attributed*: the CPU time of the measured server's own processes (its session: the
  servers are started with ``start_new_session``, so its workers and their children share
  its process group) plus that of the PostgreSQL backends connected to the benchmark's
  database (its connection pools), from ``/proc/<pid>/stat``. Other tenants of a shared
  machine do not count; the kernel's network work is left out.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

import psycopg

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_cpu_ticks() -> list[int]:
    """This machine's CPU ticks so far (/proc/stat): user, nice, system, idle, iowait, irq,
    softirq, steal (time the hypervisor gave to other guests)."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def process_cpu_s(pid: int | str) -> float:
    """User + system CPU seconds of one process so far (0 if it is gone)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS if fields else 0.0


def session_cpu_s(group: int) -> float:
    """CPU seconds so far of every live process in a process group."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(entry.name)) and int(fields[2]) == group:
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


class CpuMeter:
    """CPU time of a measurement (module docstring). ``group``: the server's process group
    (None for pgbench: then only ``seconds``); ``database``: a connection to the benchmark's
    database, whose backends are counted."""

    def __init__(self, group: int | None = None, database: psycopg.Connection | None = None) -> None:
        self.group, self.database = group, database
        self.attributed = float("nan")

    def _backends(self) -> dict[int, float]:
        assert self.database is not None
        rows = self.database.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        return {pid: process_cpu_s(pid) for (pid,) in rows}

    def __enter__(self) -> CpuMeter:
        if self.group is not None and self.database is not None:
            self._session, self._backends_before = session_cpu_s(self.group), self._backends()
        self._machine, self._client = self._machine_s(), self._client_s()
        self._ticks = machine_cpu_ticks()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = (self._machine_s() - self._machine) - (self._client_s() - self._client)
        ticks = [now - before for now, before in zip(machine_cpu_ticks(), self._ticks, strict=True)]
        self.stolen = ticks[7] / max(sum(ticks), 1)
        if self.group is not None and self.database is not None:
            backends = self._backends()
            used = sum(now - self._backends_before.get(pid, 0.0) for pid, now in backends.items())
            self.attributed = session_cpu_s(self.group) - self._session + used

    @staticmethod
    def _machine_s() -> float:
        user, nice, system, _, _, irq, softirq, _ = machine_cpu_ticks()
        return (user + nice + system + irq + softirq) / CLOCK_TICKS

    @staticmethod
    def _client_s() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime
