"""CPU accounting from /proc: who used the cores during a run (wrk, each gunicorn worker, PostgreSQL, Redis, the rest)."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (which may hold spaces), None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU of one process, zeros if it is gone."""
    fields = _stat(pid)
    return (int(fields[11]) / TICK, int(fields[12]) / TICK) if fields else (0.0, 0.0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process, 0 if it is gone."""
    return sum(cpu_times(pid))


def reaped_children_seconds(pid: int) -> float:
    """User + system CPU of the children `pid` has waited for: a PostgreSQL backend that exited
    (a pool closing an idle connection) keeps its CPU there, in its postmaster's account."""
    fields = _stat(pid)
    return (int(fields[13]) + int(fields[14])) / TICK if fields else 0.0


def children(pid: int) -> list[int]:
    out = []
    for proc in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(proc.name))
        if fields and int(fields[1]) == pid:  # its parent
            out.append(int(proc.name))
    return sorted(out)


def tree(pid: int) -> list[int]:
    pids = [pid]
    for child in children(pid):
        pids += tree(child)
    return pids


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def busy_seconds() -> float:
    """CPU time spent by everything on the machine (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / TICK


def pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class Groups:
    """Named process groups; `app` is split per worker (gunicorn master excluded)."""

    app_master: int
    postgres: list[int] = field(default_factory=list)  # postmaster pids; their children are counted too
    redis: int | None = None

    def workers(self) -> list[int]:
        return children(self.app_master)

    def snapshot(self) -> dict:
        pg = [p for root in self.postgres for p in tree(root)]
        workers = {w: cpu_times(w) for w in self.workers()}
        return {
            "workers": {w: user + system for w, (user, system) in workers.items()},
            "app_system": sum(system for _, system in workers.values()),  # the kernel's share: sockets, writes
            "postgres": sum(map(cpu_seconds, pg)) + sum(map(reaped_children_seconds, self.postgres)),
            "redis": cpu_seconds(self.redis) if self.redis else 0.0,
            "children": _children_cpu(),
            "busy": busy_seconds(),
        }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for children: each wrk run
    return usage.ru_utime + usage.ru_stime


def split(before: dict, after: dict) -> dict:
    """CPU seconds per group between two snapshots; `other` is everything else on the machine."""
    workers = {w: after["workers"][w] - before["workers"].get(w, 0.0) for w in after["workers"]}
    out = {
        "workers": workers,
        "app": sum(workers.values()),
        "app_system": after["app_system"] - before["app_system"],
        "postgres": after["postgres"] - before["postgres"],
        "redis": after["redis"] - before["redis"],
        "load": after["children"] - before["children"],
    }
    out["other"] = max(0.0, after["busy"] - before["busy"] - out["app"] - out["postgres"] - out["redis"] - out["load"])
    return out
