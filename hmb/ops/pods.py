"""Local multi-pod topology: N `hmb serve` pods behind haproxy, which health-checks /ready."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from hmb.ops.stack import DEFAULT_DIR, free_port, port_free
from hmb.ops.stack_pg import HOST, StackError, wait_for

HAPROXY = "/usr/sbin/haproxy"
# Health checks: a pod answering /ready 503 (draining) leaves rotation within INTER*FALL;
# DRAIN_DELAY_S must exceed that, so the balancer stops sending before the pod stops accepting.
CHECK_INTER_MS, CHECK_FALL, CHECK_RISE = 300, 2, 2
DRAIN_DELAY_S = 1.5
# Idle server connections haproxy keeps for reuse, like Render's/Railway's ~60 s balancer idle
# timeout: the pods' keep-alive (gunicorn `keepalive`, 75 s) must stay above it (DESIGN §9).
LB_IDLE_S = 60

CONFIG = """\
# Written by `hmb up --pods`: a local stand-in for Render's / Railway's balancer.
global
    maxconn 4096
    stats socket {sock} mode 600 level admin

defaults
    mode http
    option http-keep-alive
    option forwardfor
    http-reuse {reuse}
    timeout connect 1s
    timeout client 60s
    timeout server 30s
    timeout queue 5s
    # Without it a check must answer within `inter` (300 ms): a busy pod would flap out of rotation.
    timeout check 2s
    timeout http-keep-alive {idle}s
    # Connection refused (a pod gone): retry on another pod; nothing was sent, so it is safe.
    retries 2
    option redispatch 1

frontend api
    bind {host}:{port}
    default_backend pods

backend pods
    balance roundrobin
    option httpchk
    http-check send meth GET uri /ready
    http-check expect status 200
    default-server check inter {inter}ms fall {fall} rise {rise} pool-purge-delay {idle}s
{servers}
"""


@dataclass
class Pod:
    name: str
    port: int
    pid: int | None = None


@dataclass
class PodsInfo:
    dir: Path
    lb_port: int
    pods: list[Pod] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.lb_port}"


class Pods:
    """Start, stop and break the pods and their balancer; state in `dir/pods.json` for `hmb down`."""

    def __init__(self, dir: Path | str = DEFAULT_DIR / "pods", env: Mapping[str, str] | None = None,
                 workers: int = 2, extra_env: Mapping[str, str] | None = None, reuse: str = "safe",
                 upstream: Callable[[int], int] | None = None):
        self.dir = Path(dir).absolute()
        self.env = dict(os.environ if env is None else env)
        self.workers = workers
        self.extra_env = dict(extra_env or {})
        self.reuse = reuse  # haproxy http-reuse: "always" reuses idle pod connections the most
        # The port haproxy dials for a pod's port (tests put a network with latency in between).
        self.upstream = upstream or (lambda port: port)
        self.state_file = self.dir / "pods.json"
        self.sock = self.dir / "haproxy.sock"
        self.info: PodsInfo | None = self._load()
        self._children: dict[int, subprocess.Popen] = {}  # pods this process started, to reap

    # -- state --
    def _load(self) -> PodsInfo | None:
        try:
            d = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return PodsInfo(self.dir, d["lb_port"], [Pod(**p) for p in d["pods"]])

    def _save(self) -> None:
        assert self.info is not None
        state = {"lb_port": self.info.lb_port, "pods": [p.__dict__ for p in self.info.pods]}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self.state_file)

    def pod(self, name: str) -> Pod:
        assert self.info is not None, "no pods; call up() first"
        return next(p for p in self.info.pods if p.name == name)

    # -- lifecycle --
    def up(self, n: int, lb_port: int | None = None, timeout: float = 60) -> PodsInfo:
        """Start n pods and haproxy; returns once haproxy sees every pod UP."""
        if not os.access(HAPROXY, os.X_OK):
            raise StackError(f"{HAPROXY} not found: apt-get install haproxy")
        self.down()
        self.dir.mkdir(parents=True, exist_ok=True)
        used: set[int] = set()
        lb = lb_port or free_port(used)
        used.add(lb)
        pods = []
        for i in range(1, n + 1):
            port = free_port(used)
            used.add(port)
            pods.append(Pod(f"pod-{i}", port))
        self.info = PodsInfo(self.dir, lb, pods)
        for pod in pods:
            self._spawn(pod)
        self._save()
        self._start_haproxy()
        for pod in pods:
            self.wait_state(pod.name, "UP", timeout)
        return self.info

    def down(self, timeout: float = 30) -> None:
        """Stop haproxy and every pod (SIGTERM, then SIGKILL past the timeout)."""
        self._stop_haproxy()
        if self.info is not None:
            for pod in self.info.pods:
                self.stop_pod(pod.name, timeout=timeout)
        self.state_file.unlink(missing_ok=True)
        self.info = None

    def _pod_env(self, pod: Pod) -> dict[str, str]:
        metrics = self.dir / "prometheus" / pod.name
        return {**self.env, "POD_ID": pod.name, "PORT": str(pod.port), "HOST": HOST,
                "WEB_CONCURRENCY": str(self.workers), "PROMETHEUS_MULTIPROC_DIR": str(metrics),
                "DRAIN_DELAY_S": str(DRAIN_DELAY_S), **self.extra_env}

    def _spawn(self, pod: Pod) -> None:
        wait_for(lambda: port_free(pod.port), 15, f"port {pod.port} to be free for {pod.name}")
        log = open(self.dir / f"{pod.name}.log", "ab")
        # Its own session: a SIGKILL to the group is the whole pod dying, master and workers.
        proc = subprocess.Popen(
            [sys.executable, "-m", "hmb", "serve", "--host", HOST, "--port", str(pod.port),
             "--workers", str(self.workers)],
            env=self._pod_env(pod), stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
        log.close()
        pod.pid = proc.pid  # `hmb serve` execs gunicorn: this is the master
        self._children[pod.pid] = proc

    # -- haproxy --
    def config(self) -> str:
        assert self.info is not None
        servers = "\n".join(f"    server {p.name} {HOST}:{self.upstream(p.port)}" for p in self.info.pods)
        return CONFIG.format(sock=self.sock, reuse=self.reuse, idle=LB_IDLE_S, host=HOST, port=self.info.lb_port,
                             inter=CHECK_INTER_MS, fall=CHECK_FALL, rise=CHECK_RISE, servers=servers)

    def _start_haproxy(self) -> None:
        assert self.info is not None
        cfg = self.dir / "haproxy.cfg"
        cfg.write_text(self.config())
        res = subprocess.run([HAPROXY, "-f", str(cfg), "-D", "-p", str(self.dir / "haproxy.pid")],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=15)
        if res.returncode != 0:
            raise StackError(f"haproxy failed: {(res.stdout + res.stderr).strip()[-300:]}")
        wait_for(lambda: self._stats_ok(), 15, "haproxy's stats socket")

    def _haproxy_pid(self) -> int | None:
        try:
            return int((self.dir / "haproxy.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _stop_haproxy(self) -> None:
        pid = self._haproxy_pid()
        if pid is not None and _alive(pid, "haproxy"):
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not _alive(pid, "haproxy"), 15, "haproxy to stop")
        (self.dir / "haproxy.pid").unlink(missing_ok=True)

    def _stats_ok(self) -> bool:
        return bool(self.stats())

    def command(self, line: str) -> str:
        """One command on haproxy's admin socket (e.g. `show stat`)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(self.sock))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self) -> dict[str, dict[str, str]]:
        """Per server (and BACKEND) of the `pods` backend: haproxy's `show stat` row."""
        try:
            text = self.command("show stat")
        except OSError:
            return {}
        lines = [ln for ln in text.splitlines() if ln]
        if not lines or not lines[0].startswith("# "):
            return {}
        header = lines[0][2:].split(",")
        rows = (dict(zip(header, ln.split(","))) for ln in lines[1:])
        return {r["svname"]: r for r in rows if r.get("pxname") == "pods"}

    def states(self) -> dict[str, str]:
        return {name: row["status"] for name, row in self.stats().items() if name != "BACKEND"}

    def wait_state(self, name: str, state: str, timeout: float = 30) -> None:
        """Until haproxy's health checks call the pod `state` (UP, DOWN).

        UP means a check has passed: haproxy starts a server as UP before checking it (status
        "UP", check "INI"), and a pod still starting then fails its first checks and drops out
        of rotation for ~1 s (seen as 503s in the fault suite)."""

        def reached() -> bool:
            row = self.stats().get(name, {})
            if row.get("status", "").split(" ")[0] != state:
                return False
            return state != "UP" or row.get("check_status", "").lstrip("* ") == "L7OK"

        wait_for(reached, timeout, f"haproxy to mark {name} {state}; see {self.dir / (name + '.log')}")

    # -- pods: start, stop, break --
    def start_pod(self, name: str, timeout: float = 60) -> None:
        pod = self.pod(name)
        if pod.pid is not None and _alive(pod.pid):
            return
        self._spawn(pod)
        self._save()
        self.wait_state(name, "UP", timeout)

    def stop_pod(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Signal the pod's master (SIGTERM: graceful drain) and wait until the whole pod is gone."""
        pod = self.pod(name)
        if pod.pid is None or not _alive(pod.pid):
            pod.pid = None
            return
        members = [pod.pid, *self.worker_pids(name)]
        os.kill(pod.pid, sig)
        try:
            self._wait_gone(pod.pid, members, timeout)
        except StackError:
            os.killpg(pod.pid, signal.SIGKILL)
            self._wait_gone(pod.pid, members, 10)
        pod.pid = None
        self._save()

    def kill_pod(self, name: str) -> None:
        """SIGKILL the pod's whole process group: master and workers die at once."""
        pod = self.pod(name)
        assert pod.pid is not None
        members = [pod.pid, *self.worker_pids(name)]
        os.killpg(pod.pid, signal.SIGKILL)
        self._wait_gone(pod.pid, members, 10)
        pod.pid = None
        self._save()

    def worker_pids(self, name: str) -> list[int]:
        pid = self.pod(name).pid
        try:
            return sorted(c.pid for c in psutil.Process(pid).children()) if pid else []
        except psutil.NoSuchProcess:
            return []

    def kill_worker(self, name: str) -> int:
        """SIGKILL one worker of the pod; its master starts a replacement. Returns the dead pid."""
        victim = self.worker_pids(name)[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: not _alive(victim), 10, f"worker {victim} to die")
        return victim

    def hup(self, name: str) -> None:
        """`kill -HUP` the master: gunicorn starts new workers, then drains the old ones."""
        pid = self.pod(name).pid
        assert pid is not None
        os.kill(pid, signal.SIGHUP)

    def _wait_gone(self, master: int, members: list[int], timeout: float) -> None:
        child = self._children.pop(master, None)
        if child is not None:
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                self._children[master] = child
                raise StackError(f"pod master {master} did not exit within {timeout:g}s") from None
        wait_for(lambda: not any(_alive(p) for p in members), timeout, f"pod {master} to exit")


def _alive(pid: int, name: str | None = None) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and (name is None or proc.name() == name)
    except psutil.NoSuchProcess:
        return False


def haproxy_available() -> bool:
    return os.access(HAPROXY, os.X_OK) or shutil.which("haproxy") is not None
