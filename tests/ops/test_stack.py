"""Real-process tests for the local stack launcher (PostgreSQL primary + replica + Redis)."""
from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator

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


def info_of(s: Stack) -> StackInfo:
    info = s.info()
    assert info is not None
    return info


def postmaster_pid(s: Stack, node: str) -> int:
    return int((s.dir / "pg" / node / "postmaster.pid").read_text().split()[0])


@pytest.fixture(scope="module")
def own() -> Iterator[Stack]:
    """A private stack (not conftest's session `stack`): these tests stop and move its parts."""
    s = Stack(tempfile.mkdtemp(prefix="hmb-stack-test-"))
    try:
        s.up()
        yield s
    finally:
        s.destroy()
    assert not s.dir.exists()


def test_find_pg_bindir() -> None:
    assert (find_pg_bindir() / "pg_ctl").exists()


def test_up_writes_state(own: Stack) -> None:
    info = info_of(own)
    assert info.dir == own.dir
    assert len({info.primary_port, info.replica_port, info.redis_port}) == 3
    assert info.primary_url == f"postgresql://hmb@127.0.0.1:{info.primary_port}/hmb"
    assert info.redis_url == f"redis://127.0.0.1:{info.redis_port}/0"
    env = dict(line.split("=", 1) for line in (own.dir / "stack.env").read_text().splitlines())
    assert env == info.env() == {"DATABASE_URL": info.primary_url,
                                 "DATABASE_READ_REPLICA_1": info.replica_url,
                                 "REDIS_URL": info.redis_url}
    assert own.status() == {"primary": True, "replica": True, "redis": True}


def test_primary_write_reaches_replica(own: Stack) -> None:
    info = info_of(own)
    q(info.primary_url, "create table items (id int primary key, v text)")
    q(info.primary_url, "insert into items values (1, 'one')")
    assert q(info.replica_url, "select pg_is_in_recovery()") == [(True,)]
    assert q(info.primary_url, "select state from pg_stat_replication") == [("streaming",)]
    own.wait_replica_caught_up(10)
    assert q(info.replica_url, "select v from items where id = 1") == [("one",)]
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        q(info.replica_url, "insert into items values (2, 'no')")


def test_up_is_idempotent(own: Stack) -> None:
    before = own.info()
    pids = postmaster_pid(own, "primary"), postmaster_pid(own, "replica")
    assert own.up() == before
    assert (postmaster_pid(own, "primary"), postmaster_pid(own, "replica")) == pids


def test_paused_replay_hides_new_rows(own: Stack) -> None:
    info = info_of(own)
    own.pause_replay()
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
        own.resume_replay()
    own.wait_replica_caught_up(10)
    assert q(info.replica_url, "select v from items where id = 10") == [("paused",)]


def test_redis_stop_start_same_port(own: Stack) -> None:
    port = info_of(own).redis_port
    own.stop_redis()
    assert not redis_ping(port) and own.status()["redis"] is False
    own.start_redis()
    assert redis_ping(port) and info_of(own).redis_port == port


def test_replica_stop_start_catches_up(own: Stack) -> None:
    info = info_of(own)
    own.stop_replica()
    assert own.status()["replica"] is False
    q(info.primary_url, "insert into items values (20, 'while down')")
    own.start_replica()
    own.wait_replica_caught_up(10)
    assert q(info.replica_url, "select v from items where id = 20") == [("while down",)]


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_primary_stop_start(own: Stack, mode: str) -> None:
    info = info_of(own)
    own.stop_primary(mode)
    assert own.status()["primary"] is False
    with pytest.raises(psycopg.OperationalError):
        q(info.primary_url, "select 1")
    own.start_primary()
    assert q(info.primary_url, "select count(*) from items") == [(3,)]
    own.wait_replica_caught_up(15)  # the replica reconnects on its own


def test_down_then_up_keeps_data_and_ports(own: Stack) -> None:
    before = info_of(own)
    own.down()
    assert own.status() == {"primary": False, "replica": False, "redis": False}
    assert own.up() == before
    assert q(before.primary_url, "select count(*) from items") == [(3,)]
    own.wait_replica_caught_up(10)
    assert q(before.replica_url, "select count(*) from items") == [(3,)]


def test_up_moves_off_a_taken_port(own: Stack) -> None:
    before = info_of(own)
    own.down()
    with socket.socket() as squatter:  # someone else grabbed the primary's port meanwhile
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # port is in TIME_WAIT
        squatter.bind(("127.0.0.1", before.primary_port))
        squatter.listen()
        after = own.up()
    assert after.primary_port != before.primary_port
    assert (after.replica_port, after.redis_port) == (before.replica_port, before.redis_port)
    assert f"DATABASE_URL={after.primary_url}\n" in (own.dir / "stack.env").read_text()
    q(after.primary_url, "insert into items values (30, 'moved')")
    own.wait_replica_caught_up(10)  # replica follows the primary to its new port
    assert q(after.replica_url, "select v from items where id = 30") == [("moved",)]
