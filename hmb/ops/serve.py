"""`hmb serve`: gunicorn with gunicorn.conf.py and aiohttp's worker."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from hmb.ops.cli import settings_or_exit

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


@click.command()
@click.option("--host", envvar="HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="PORT", default=8000, show_default=True, type=int)
@click.option("--workers", envvar="WEB_CONCURRENCY", default=2, show_default=True, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the API under gunicorn (settings are checked before it starts)."""
    os.environ.update({"HOST": host, "PORT": str(port), "WEB_CONCURRENCY": str(workers)})
    settings_or_exit()  # a bad setting is one clear line here, not N crashing workers
    gunicorn = Path(sys.executable).with_name("gunicorn")
    os.execv(str(gunicorn), [str(gunicorn), "--config", str(CONF)])
