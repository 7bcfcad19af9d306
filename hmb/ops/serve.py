"""`hmb serve`: gunicorn with gunicorn.conf.py and aiohttp's worker."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import click

from hmb.ops.cli import settings_or_exit

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def var_dir() -> Path:
    """./var of the source checkout, else of the working directory (like the local stack's)."""
    root = CONF.parent
    return (root if (root / "setup.cfg").exists() else Path.cwd()) / "var"


def default_metrics_dir(var: Path, pod_id: str, port: int) -> Path:
    """Prometheus multiprocess files: one directory per pod (and port: pods may share a host)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", pod_id).strip(".") or "pod"
    return var / "prometheus" / f"{safe}-{port}"


@click.command()
@click.option("--host", envvar="HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="PORT", default=8000, show_default=True, type=int)
@click.option("--workers", envvar="WEB_CONCURRENCY", default=2, show_default=True, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the API under gunicorn (settings are checked before it starts)."""
    os.environ.update({"HOST": host, "PORT": str(port), "WEB_CONCURRENCY": str(workers)})
    settings = settings_or_exit()  # a bad setting is one clear line here, not N crashing workers
    # Set before gunicorn starts (and so before prometheus_client is imported anywhere):
    # every worker writes its series there and a scrape of any worker sums them all.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(default_metrics_dir(var_dir(), settings.pod_id, port))
    gunicorn = Path(sys.executable).with_name("gunicorn")
    os.execv(str(gunicorn), [str(gunicorn), "--config", str(CONF)])
