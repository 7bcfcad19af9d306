"""The collector's long pauses are logged (they stall every request of the worker)."""

from __future__ import annotations

import gc
import logging

from hmb.ops import gcwatch


def test_a_pause_over_the_threshold_is_counted_and_logged(monkeypatch, caplog):
    watch = gcwatch.GcWatch()
    monkeypatch.setattr(gcwatch, "SLOW_S", 0.0)  # every collection is "slow" for this test
    gc.callbacks.append(watch)
    try:
        with caplog.at_level(logging.WARNING, logger="hmb.gc"):
            gc.collect(2)
    finally:
        gc.callbacks.remove(watch)
    assert watch.slow >= 1
    record = next(r for r in caplog.records if r.name == "hmb.gc")
    assert record.generation == 2 and record.ms >= 0


def test_short_pauses_are_not_logged(caplog):
    watch = gcwatch.GcWatch()
    gc.callbacks.append(watch)
    try:
        with caplog.at_level(logging.WARNING, logger="hmb.gc"):
            gc.collect(0)  # a young collection of a quiet process: well under SLOW_S
    finally:
        gc.callbacks.remove(watch)
    assert watch.slow == 0 and not [r for r in caplog.records if r.name == "hmb.gc"]
