"""Stopping background tasks for sure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger("hmb")


async def stop(tasks: Iterable[asyncio.Task], rounds: int = 5, wait_s: float = 0.5) -> None:
    """Cancel tasks and wait for them, cancelling again if one swallowed it.

    redis-py can consume a cancellation that lands mid-call (the call returns
    normally), so one cancel() is not enough to stop a loop around Redis.
    """
    pending = {t for t in tasks if not t.done()}
    for _ in range(rounds):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=wait_s)
    if pending:
        log.warning("background tasks did not stop", extra={"tasks": [t.get_name() for t in pending]})
