"""Real-process tests for the local stack launcher (PostgreSQL primary + replica + Redis)."""
from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from hmb.ops.stack import Stack, StackError, StackInfo, find_pg_bindir


def _have_binaries() -> bool:
    try:
        find_pg_bindir()
    except StackError:
        return False
    return shutil.which("redis-server") is not None


pytestmark = pytest.mark.skipif(not _have_binaries(), reason="needs postgresql and redis-server")


def q(url: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def poll_until(cond: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def postmaster_pid(stack: Stack, node: str) -> int:
    return int((stack.dir / "pg" / node / "postmaster.pid").read_text().split()[0])


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    s = Stack(tempfile.mkdtemp(prefix="hmb-stack-test-"))
    try:
        s.up()
        yield s
    finally:
        s.destroy()
    assert not s.dir.exists()


def test_find_pg_bindir() -> None:
    assert (find_pg_bindir() / "pg_ctl").exists()


def test_up_writes_state(stack: Stack) -> None:
    info = stack.info()
    assert isinstance(info, StackInfo) and info.dir == stack.dir
    assert len({info.primary_port, info.replica_port, info.redis_port}) == 3
    assert info.primary_url == f"postgresql://hmb@127.0.0.1:{info.primary_port}/hmb"
    assert info.redis_url == f"redis://127.0.0.1:{info.redis_port}/0"
    env = dict(line.split("=", 1) for line in (stack.dir / "stack.env").read_text().splitlines())
    assert env == info.env() == {"DATABASE_URL": info.primary_url,
                                 "DATABASE_READ_REPLICA_1": info.replica_url,
                                 "REDIS_URL": info.redis_url}
    assert stack.status() == {"primary": True, "replica": True, "redis": True}


def test_primary_write_reaches_replica(stack: Stack) -> None:
    info = stack.info()
    assert info
    q(info.primary_url, "create table items (id int primary key, v text)")
    q(info.primary_url, "insert into items values (1, 'one')")
    assert q(info.replica_url, "select pg_is_in_recovery()") == [(True,)]
    assert q(info.primary_url, "select state from pg_stat_replication") == [("streaming",)]
    stack.wait_replica_caught_up(10)
    assert q(info.replica_url, "select v from items where id = 1") == [("one",)]
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        q(info.replica_url, "insert into items values (2, 'no')")


def test_up_is_idempotent(stack: Stack) -> None:
    before = stack.info()
    pids = postmaster_pid(stack, "primary"), postmaster_pid(stack, "replica")
    assert stack.up() == before
    assert (postmaster_pid(stack, "primary"), postmaster_pid(stack, "replica")) == pids


def test_paused_replay_hides_new_rows(stack: Stack) -> None:
    info = stack.info()
    assert info
    stack.pause_replay()
    try:
        with psycopg.connect(info.primary_url, autocommit=True) as conn:
            conn.execute("set synchronous_commit = on")  # flushed, so the walsender ships it
            conn.execute("insert into items values (10, 'paused')")
            lsn = conn.execute("select pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
        # Wait until the replica has *received* the row's WAL: only replay is held back.
        received = "select pg_last_wal_receive_lsn() >= %s::pg_lsn"
        assert poll_until(lambda: q(info.replica_url, received, (str(lsn),))[0][0])
        assert q(info.replica_url, "select count(*) from items where id = 10") == [(0,)]
    finally:
        stack.resume_replay()
    stack.wait_replica_caught_up(10)
    assert q(info.replica_url, "select v from items where id = 10") == [("paused",)]


def test_redis_stop_start_same_port(stack: Stack) -> None:
    port = stack.info().redis_port  # type: ignore[union-attr]
    stack.stop_redis()
    assert not redis_ping(port) and stack.status()["redis"] is False
    stack.start_redis()
    assert redis_ping(port) and stack.info().redis_port == port  # type: ignore[union-attr]


def test_replica_stop_start_catches_up(stack: Stack) -> None:
    info = stack.info()
    assert info
    stack.stop_replica()
    assert stack.status()["replica"] is False
    q(info.primary_url, "insert into items values (20, 'while down')")
    stack.start_replica()
    stack.wait_replica_caught_up(10)
    assert q(info.replica_url, "select v from items where id = 20") == [("while down",)]


def test_primary_stop_start(stack: Stack) -> None:
    info = stack.info()
    assert info
    stack.stop_primary()
    with pytest.raises(psycopg.OperationalError):
        q(info.primary_url, "select 1")
    stack.start_primary()
    assert q(info.primary_url, "select count(*) from items") == [(3,)]
    stack.wait_replica_caught_up(15)


def test_down_then_up_keeps_data_and_ports(stack: Stack) -> None:
    before = stack.info()
    stack.down()
    assert stack.status() == {"primary": False, "replica": False, "redis": False}
    assert stack.up() == before
    assert q(before.primary_url, "select count(*) from items") == [(3,)]  # type: ignore[union-attr]
    stack.wait_replica_caught_up(10)
    assert q(before.replica_url, "select count(*) from items") == [(3,)]  # type: ignore[union-attr]


def test_up_moves_off_a_taken_port(stack: Stack) -> None:
    before = stack.info()
    assert before
    stack.down()
    with socket.socket() as squatter:  # someone else grabbed the primary's port meanwhile
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # port is in TIME_WAIT
        squatter.bind(("127.0.0.1", before.primary_port))
        squatter.listen()
        after = stack.up()
    assert after.primary_port != before.primary_port
    assert (after.replica_port, after.redis_port) == (before.replica_port, before.redis_port)
    assert f"DATABASE_URL={after.primary_url}\n" in (stack.dir / "stack.env").read_text()
    q(after.primary_url, "insert into items values (30, 'moved')")
    stack.wait_replica_caught_up(10)  # replica follows the primary to its new port
    assert q(after.replica_url, "select v from items where id = 30") == [("moved",)]
