"""gunicorn settings for hmb: `gunicorn -c gunicorn.conf.py` (or `hmb serve`).

Each worker is an aiohttp event loop; its concurrency is bounded by its pools and
MAX_IN_FLIGHT, not by threads (the seed's gthread worker cannot run this app at all).
"""

import logging
import os
import shutil

wsgi_app = "hmb.app:create_app"  # the factory itself, without (): aiohttp's worker awaits it
# uvloop: the faster loop for our endpoints here (HMB_LOOP=asyncio selects the standard one).
worker_class = "hmb.ops.worker.UVLoopWorker" if os.environ.get("HMB_LOOP", "uvloop") == "uvloop" else "hmb.ops.worker.Worker"
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))  # one per core: async workers need no more
# A listening socket per worker: the kernel spreads new connections over them (with one shared
# socket a worker can accept a whole burst, uvloop included: measured 0 %/100 % splits). The fault
# suite's HUP reload and rolling restart lose nothing with it. REUSE_PORT=0 restores the shared socket.
reuse_port = os.environ.get("REUSE_PORT", "1") == "1"
backlog = 2048
# Above any load balancer's idle timeout (Render/Railway ~60 s), or reused connections get 502s.
keepalive = int(os.environ.get("KEEPALIVE_S", "75"))
timeout = 30  # a worker whose loop is stuck this long is killed and replaced
# Drain delay + the longest request must fit: SIGTERM → /ready 503 → finish in-flight → exit.
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT_S", "30"))
# Recycling restarts every L1 cache and pool: the seed's 1000 did it every ~8 s. Off by default.
max_requests = int(os.environ.get("MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
preload_app = False  # pools, sockets and the loop are created after fork, per worker
control_socket_disable = True  # gunicorn ≥ 25.1's control socket: not used; no stray socket files
accesslog = None  # hmb logs one JSON line per request itself (hmb.web.middlewares)
# gunicorn's own lines (boot, worker exits) as JSON too, so one parser reads every line.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "hmb.logs.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": os.environ.get("LOG_LEVEL", "INFO"), "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
    },
}
# One access-log line per request: skip the record fields the JSON lines never show (caller's
# file/line, thread, process); measured −11 µs of CPU per request (bench/, docs/capacity.md).
logging._srcfile = None
logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
forwarded_allow_ips = os.environ.get("TRUSTED_PROXIES", "127.0.0.1")
proc_name = "hmb"


def on_starting(server):
    # Prometheus multiprocess mode: one directory per pod start, wiped so dead workers' series go.
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
