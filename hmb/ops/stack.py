"""Local dev/test stack: PostgreSQL primary + streaming replica + Redis, from system binaries."""
from __future__ import annotations

import fcntl
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .stack_pg import (HOST, PG_OS_USER, PgNode, StackError, find_pg_bindir, flushed_wal_lsn,
                       postmaster_alive, sql, wait_for)

__all__ = ["DEFAULT_DIR", "Stack", "StackError", "StackInfo", "find_pg_bindir"]

_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = (_ROOT if (_ROOT / "setup.cfg").exists() else Path.cwd()) / "var"  # source checkout
TIMEOUT = 30.0


@dataclass(frozen=True)
class StackInfo:
    dir: Path
    primary_port: int
    replica_port: int
    redis_port: int

    @property
    def primary_url(self) -> str:
        return f"postgresql://hmb@{HOST}:{self.primary_port}/hmb"

    @property
    def replica_url(self) -> str:
        return f"postgresql://hmb@{HOST}:{self.replica_port}/hmb"

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.redis_port}/0"

    def env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.primary_url, "DATABASE_READ_REPLICA_1": self.replica_url,
                "REDIS_URL": self.redis_url}


def free_port(exclude: set[int]) -> int:
    while True:  # bind port 0 and let the kernel pick; retry on a (rare) repeat
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in exclude:
            return port


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def redis_cmd(port: int, *args: str) -> bytes:
    """Send one RESP command, return the raw reply (stdlib only, no redis-cli fork)."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    with socket.create_connection((HOST, port), timeout=2) as s:
        s.sendall(payload.encode())
        return s.recv(1024)


def redis_ping(port: int) -> bool:
    try:
        return redis_cmd(port, "PING").startswith(b"+PONG")
    except OSError:
        return False


class Stack:
    def __init__(self, dir: Path | str = DEFAULT_DIR) -> None:
        self.dir = Path(dir).absolute()  # paths end up inside postgresql.conf
        self.state_file, self.env_file = self.dir / "stack.json", self.dir / "stack.env"
        self.pgdir, self.redisdir = self.dir / "pg", self.dir / "redis"
        self._bindir: Path | None = None

    # -- nodes (lazy: info()/status() must work without binaries) --
    def _node(self, name: str) -> PgNode:
        if self._bindir is None:
            self._bindir = find_pg_bindir()
        return PgNode(self._bindir, self.pgdir / name, self.pgdir / "run")

    @property
    def _primary(self) -> PgNode:
        return self._node("primary")

    @property
    def _replica(self) -> PgNode:
        return self._node("replica")

    # -- state --
    def info(self) -> StackInfo | None:
        try:
            d = json.loads(self.state_file.read_text())
            return StackInfo(self.dir, d["primary_port"], d["replica_port"], d["redis_port"])
        except (OSError, ValueError, KeyError):
            return None

    def _need_info(self) -> StackInfo:
        if (info := self.info()) is None:
            raise StackError(f"no stack in {self.dir}; run `hmb up` first")
        return info

    def _write_state(self, info: StackInfo) -> None:
        state = {"dir": str(self.dir), "primary_port": info.primary_port,
                 "replica_port": info.replica_port, "redis_port": info.redis_port,
                 "pg_bindir": str(self._bindir), **info.env()}
        for path, text in [(self.state_file, json.dumps(state, indent=2) + "\n"),
                           (self.env_file, "".join(f"{k}={v}\n" for k, v in info.env().items()))]:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, path)  # readers never see a half-written file

    def status(self) -> dict[str, bool]:
        info = self.info()
        return {"primary": postmaster_alive(self.pgdir / "primary"),  # no binaries needed
                "replica": postmaster_alive(self.pgdir / "replica"),
                "redis": info is not None and redis_ping(info.redis_port)}

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "w") as f:  # serialise concurrent up/down (xdist)
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def _prepare_dirs(self) -> None:
        if not shutil.which("redis-server"):
            raise StackError("redis-server not found: apt-get install redis-server")
        self.redisdir.mkdir(exist_ok=True)
        (self.pgdir / "run").mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._open_for_postgres()

    def _open_for_postgres(self) -> None:
        try:
            pw = pwd.getpwnam(PG_OS_USER)
        except KeyError:
            raise StackError("no `postgres` system user: apt-get install postgresql") from None
        os.chmod(self.dir, 0o755)  # tempfile dirs are 0700
        for d in (self.pgdir, self.pgdir / "run"):
            os.chown(d, pw.pw_uid, pw.pw_gid)
            os.chmod(d, 0o755)
        tmp = Path(tempfile.gettempdir()).resolve()
        for parent in self.dir.resolve().parents:
            if parent.stat().st_mode & 0o001:
                continue
            if tmp not in parent.parents:
                raise StackError(f"{parent} is not traversable by `postgres`; "
                                 f"chmod o+x it or use a dir under {tmp}")
            os.chmod(parent, parent.stat().st_mode | 0o011)  # e.g. pytest's 0700 /tmp/pytest-of-root

    # -- lifecycle --
    def up(self) -> StackInfo:
        if len(str(self.pgdir / "run" / ".s.PGSQL.65535")) > 107:  # sun_path limit
            raise StackError(f"stack dir {self.dir} is too long for a unix socket path; "
                             "use a shorter one")
        with self._locked():
            self._prepare_dirs()
            prev, used = self.info(), set()

            def pick(recorded: int | None, running: bool) -> int:
                port = recorded if recorded and (running or port_free(recorded)) else free_port(used)
                used.add(port)
                return port

            primary, replica = self._primary, self._replica
            info = StackInfo(self.dir,
                             pick(prev.primary_port if prev else None, primary.running()),
                             pick(prev.replica_port if prev else None, replica.running()),
                             pick(prev.redis_port if prev else None,
                                  prev is not None and redis_ping(prev.redis_port)))
            self._up_primary(primary, info)
            self._up_replica(replica, info)
            if not redis_ping(info.redis_port):
                self._start_redis(info.redis_port)
            self._write_state(info)
            return info

    def _up_primary(self, node: PgNode, info: StackInfo) -> None:
        if not node.initialized():
            node.wipe()
            node.initdb(info.primary_port)
        if not node.running():
            node.write_local(info.primary_port)
            node.start(info.primary_port)
        if not sql(info.primary_port, "select 1 from pg_database where datname = 'hmb'"):
            sql(info.primary_port, "create database hmb")

    def _up_replica(self, node: PgNode, info: StackInfo) -> None:
        if not node.initialized():
            node.wipe()
            node.basebackup(info.primary_port, info.replica_port)
        changed = node.write_local(info.replica_port, info.primary_port)
        if not node.running():
            self._start_replica(node, info)
        elif changed:  # primary moved port; primary_conninfo is reloadable since PG13
            node.reload()

    def down(self) -> None:
        with self._locked():
            self._down()

    def _down(self, pg_mode: str = "fast") -> None:
        info = self.info()
        if info and redis_ping(info.redis_port):
            self._stop_redis(info.redis_port)
        if postmaster_alive(self.pgdir / "replica"):
            self._replica.stop(pg_mode)
        if postmaster_alive(self.pgdir / "primary"):
            self._primary.stop(pg_mode)

    def destroy(self) -> None:
        if not self.dir.exists():
            return
        with self._locked():
            try:
                self._down()
            except StackError:  # still tear down: an immediate stop is fine for data we delete
                self._down("immediate")
            shutil.rmtree(self.dir)

    # -- redis --
    def _start_redis(self, port: int) -> None:
        r = self.redisdir
        argv = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--daemonize", "yes", "--pidfile", str(r / "redis.pid"),
                "--logfile", str(r / "redis.log"), "--dir", str(r)]
        res = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                             timeout=TIMEOUT)
        if res.returncode != 0:
            raise StackError(f"redis-server failed: {(res.stdout + res.stderr).strip()[-200:]}")
        wait_for(lambda: redis_ping(port), TIMEOUT, f"Redis on port {port}; see {r / 'redis.log'}")

    def _stop_redis(self, port: int) -> None:
        try:
            redis_cmd(port, "SHUTDOWN", "NOSAVE")
        except OSError:
            pass  # connection dropped by the shutdown itself
        wait_for(lambda: not redis_ping(port) and port_free(port), TIMEOUT, f"Redis on {port} to stop")

    # -- fault injection (each returns once the effect is observable) --
    def stop_redis(self) -> None:
        self._stop_redis(self._need_info().redis_port)

    def start_redis(self) -> None:
        port = self._need_info().redis_port
        if not redis_ping(port):
            self._start_redis(port)

    def stop_primary(self, mode: str = "fast") -> None:
        self._primary.stop(mode)

    def start_primary(self) -> None:
        info = self._need_info()
        if not self._primary.running():
            self._primary.start(info.primary_port)

    def stop_replica(self) -> None:
        self._replica.stop("fast")

    def start_replica(self) -> None:
        if not self._replica.running():
            self._start_replica(self._replica, self._need_info())

    def _start_replica(self, node: PgNode, info: StackInfo) -> None:
        node.start(info.replica_port)
        wait_for(lambda: sql(info.replica_port, "select pg_is_in_recovery()"), TIMEOUT,
                 "replica in recovery")

    def _live_port(self, node: str) -> int:
        info = self._need_info()
        if not postmaster_alive(self.pgdir / node):
            raise StackError(f"{node} is not running; call start_{node}() or run `hmb up`")
        return info.primary_port if node == "primary" else info.replica_port

    def pause_replay(self) -> None:
        """Pause after everything committed so far is replayed: a pause inside a replayed
        transaction (a TRUNCATE's lock, say) would block every read on the replica instead."""
        self.wait_replica_caught_up()
        port = self._live_port("replica")
        sql(port, "select pg_wal_replay_pause()")
        wait_for(lambda: sql(port, "select pg_get_wal_replay_pause_state()") == "paused",
                 TIMEOUT, "replica replay to pause")

    def resume_replay(self) -> None:
        port = self._live_port("replica")
        sql(port, "select pg_wal_replay_resume()")
        wait_for(lambda: sql(port, "select pg_get_wal_replay_pause_state()") == "not paused",
                 TIMEOUT, "replica replay to resume")

    def wait_replica_caught_up(self, timeout: float = TIMEOUT) -> None:
        target, replica = flushed_wal_lsn(self._live_port("primary")), self._live_port("replica")
        wait_for(lambda: sql(replica, "select pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)),
                 timeout, f"replica to replay up to {target}")
