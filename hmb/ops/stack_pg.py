"""PostgreSQL pieces of the local dev/test stack: binaries, clusters, SQL probes."""
from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

HOST = "127.0.0.1"
SUPERUSER = "hmb"
PG_OS_USER = "postgres"  # PostgreSQL refuses to run as root

# Dev/test stack: speed over durability. fsync/full_page_writes off means a
# host crash can corrupt the cluster; fine for data we can recreate any time.
BASE_CONF = """
# --- hmb local stack (dev/test only) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '{sockdir}'
max_connections = 200
shared_buffers = 128MB
wal_level = replica
max_wal_senders = 10
wal_keep_size = 256MB           # lets a stopped replica catch up without a slot
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
wal_retrieve_retry_interval = 200ms   # replica reconnects fast after a primary restart
fsync = off
synchronous_commit = off
full_page_writes = off
include_if_exists = 'hmb_local.conf'   # per-node port (+ primary_conninfo)
"""

HBA = """local all all trust
host all all 127.0.0.1/32 trust
host all all ::1/128 trust
local replication all trust
host replication all 127.0.0.1/32 trust
host replication all ::1/128 trust
"""


class StackError(Exception):
    """One-line, actionable failure of the local stack."""


def find_pg_bindir() -> Path:
    """Server binaries dir: `pg_config --bindir`, else newest /usr/lib/postgresql/<ver>/bin."""
    if pg_config := shutil.which("pg_config"):
        res = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        bindir = Path(res.stdout.strip())
        if res.returncode == 0 and (bindir / "pg_ctl").exists():
            return bindir
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.parent.name)])
    if found:
        return found[-1].parent
    raise StackError("PostgreSQL server binaries not found: apt-get install postgresql")


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll cond() (errors count as 'not yet') until truthy; StackError on timeout."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        try:
            if result := cond():
                return result
        except (StackError, psycopg.Error, OSError) as e:
            last = e
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:g}s waiting for {what}"
                             + (f" (last error: {first_line(last)})" if last else ""))
        time.sleep(0.05)


def connect(port: int, dbname: str = "postgres") -> psycopg.Connection:
    try:
        return psycopg.connect(host=HOST, port=port, user=SUPERUSER, dbname=dbname,
                               autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        raise StackError(f"PostgreSQL on port {port} unreachable: {first_line(e)}") from e


def first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def sql(port: int, query: str, params: tuple = (), dbname: str = "postgres") -> Any:
    """First column of the first row of one autocommitted statement."""
    with connect(port, dbname) as conn:
        cur = conn.execute(query, params)  # type: ignore[arg-type]
        row = cur.fetchone() if cur.description else None
        return row[0] if row else None


def flushed_wal_lsn(port: int) -> str:
    """Primary WAL position covering every commit so far, flushed so walsenders can ship it."""
    with connect(port) as conn:
        # The stack runs synchronous_commit=off, so a caller's last commit may still sit in WAL
        # buffers. A synchronous commit flushes everything before it, but only if the xact wrote
        # WAL of its own (a bare txid_current() commit is never flushed): emit a no-op message.
        conn.execute("set synchronous_commit = on")
        conn.execute("select pg_logical_emit_message(true, 'hmb_stack', 'flush')")
        return str(conn.execute("select pg_current_wal_lsn()").fetchone()[0])  # type: ignore[index]


def postmaster_alive(datadir: Path) -> bool:
    return lock_owner_alive(datadir / "postmaster.pid")


def lock_owner_alive(lockfile: Path) -> bool:
    """The PostgreSQL lock file names a live `postgres` (not a zombie, not a reused pid)."""
    try:
        pid = int(lockfile.read_text().split()[0])
        proc = Path(f"/proc/{pid}")
        # Zombies count as dead: PID 1 in containers may reap them late, or never.
        return (proc / "comm").read_text().strip() == "postgres" and \
            (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, ValueError, IndexError):
        return False


class PgNode:
    """One cluster (data dir + log) driven through initdb/pg_ctl/pg_basebackup."""

    def __init__(self, bindir: Path, datadir: Path, sockdir: Path) -> None:
        self.bindir, self.datadir, self.sockdir = bindir, datadir, sockdir
        self.logfile = datadir.with_suffix(".log")
        self.run_as = PG_OS_USER if os.geteuid() == 0 else None

    # -- plumbing --
    def _run(self, tool: str, *args: str, timeout: float = 120) -> str:
        cmd = [str(self.bindir / tool), *args]
        if self.run_as:
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            cmd = [runuser, "-u", self.run_as, "--", *cmd]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                 cwd=self.datadir.parent, env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise StackError(f"{tool} timed out after {timeout:g}s; see {self.logfile}") from None
        if res.returncode != 0:
            out = (res.stderr or res.stdout).strip().splitlines() or ["no output"]
            raise StackError(f"{tool} failed (exit {res.returncode}): {self._log_fatal() or out[-1]}"
                             f"; see {self.logfile}")
        return res.stdout

    def _log_fatal(self) -> str | None:
        """Last FATAL/PANIC line of the server log: pg_ctl itself only says 'examine the log'."""
        try:
            lines = self.logfile.read_text(errors="replace").splitlines()[-50:]
        except OSError:
            return None
        return next((ln.strip() for ln in reversed(lines) if "FATAL:" in ln or "PANIC:" in ln), None)

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    # -- state --
    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def running(self) -> bool:
        return postmaster_alive(self.datadir)

    # -- lifecycle --
    def wipe(self) -> None:
        shutil.rmtree(self.datadir, ignore_errors=True)

    def initdb(self, port: int) -> None:
        self._run("initdb", "-D", str(self.datadir), "-U", SUPERUSER, "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
        with (self.datadir / "postgresql.conf").open("a") as f:
            f.write(BASE_CONF.format(sockdir=self.sockdir))
        self._write(self.datadir / "pg_hba.conf", HBA)
        self.write_local(port)

    def basebackup(self, primary_port: int, port: int) -> None:
        self._run("pg_basebackup", "-h", HOST, "-p", str(primary_port), "-U", SUPERUSER, "-w",
                  "-D", str(self.datadir), "-R", "-X", "stream", "-c", "fast", "--no-sync")
        # -R wrote primary_conninfo into postgresql.auto.conf, which would override ours;
        # keep it in hmb_local.conf so a changed primary port is a one-file rewrite.
        auto = self.datadir / "postgresql.auto.conf"
        kept = [ln for ln in auto.read_text().splitlines() if not ln.startswith("primary_conninfo")]
        self._write(auto, "\n".join(kept) + "\n")
        self.write_local(port, primary_port)

    def write_local(self, port: int, primary_port: int | None = None) -> bool:
        """(Re)write this node's port/upstream; True if the content changed."""
        text = f"port = {port}\n"
        if primary_port is not None:
            text += (f"primary_conninfo = 'host={HOST} port={primary_port} user={SUPERUSER}"
                     f" application_name=hmb_replica1'\n")
        path = self.datadir / "hmb_local.conf"
        if path.exists() and path.read_text() == text:
            return False
        self._write(path, text)
        return True

    def start(self, port: int, timeout: float = 60) -> None:
        # After a kill -9, postgres takes a zombie's (or reused) pid for a live postmaster.
        for lock in (self.datadir / "postmaster.pid", self.sockdir / f".s.PGSQL.{port}.lock"):
            if not lock_owner_alive(lock):
                lock.unlink(missing_ok=True)
        self._run("pg_ctl", "start", "-D", str(self.datadir), "-l", str(self.logfile),
                  "-w", "-t", str(int(timeout)), timeout=timeout + 10)
        wait_for(lambda: sql(port, "select 1"), timeout, f"PostgreSQL on port {port}")

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        if self.running():
            self._run("pg_ctl", "stop", "-D", str(self.datadir), "-m", mode,
                      "-w", "-t", str(int(timeout)), timeout=timeout + 10)

    def reload(self) -> None:
        self._run("pg_ctl", "reload", "-D", str(self.datadir))
