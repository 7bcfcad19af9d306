"""The gunicorn worker: aiohttp's, plus a drain period where /ready says 503 before we stop accepting."""

from __future__ import annotations

import os
from typing import Any

from aiohttp.worker import GunicornUVLoopWebWorker, GunicornWebWorker
from aiohttp import web

from hmb.appkeys import LIFECYCLE


class _Draining:
    """On SIGTERM: flip /ready to 503 at once, keep serving for DRAIN_DELAY_S so the load
    balancer sees it and stops sending, then let aiohttp finish in-flight requests and exit."""

    app: web.Application | None = None

    def load_wsgi(self) -> None:
        super().load_wsgi()  # type: ignore[misc]
        factory = self.wsgi

        async def build() -> web.Application:
            self.app = await factory()
            return self.app

        self.wsgi = build

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.app is not None:
            self.app[LIFECYCLE].draining = True
        delay = float(os.environ.get("DRAIN_DELAY_S", "0"))
        self.loop.call_later(delay, self._stop)

    def _stop(self) -> None:
        self.alive = False
        self._notify_waiter_done()


class Worker(_Draining, GunicornWebWorker):
    pass


class UVLoopWorker(_Draining, GunicornUVLoopWebWorker):
    pass
