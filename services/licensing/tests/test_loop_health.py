"""What keeps validate's event loop from stalling: collections kept small, and a log of any
stall (docs/performance.md, "Validate's stall")."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def gc_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's own, whatever ran before in this process
    yield
    gc.set_threshold(*before)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record)


async def test_the_service_keeps_young_collections_small(
    start_licensing: Any, gc_thresholds: None
) -> None:
    # A gen-0 threshold of 20 000 made each collection hold the loop for 8-20 ms of CPU
    # (a gen-1 for 40 ms) while validate leaves the collector almost nothing to free.
    async with start_licensing() as h:
        r = await h.http.post(
            "/v1/licenses/validate",
            json={"key": "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA", "fingerprint": "machine-a-0001"},
        )
        assert r.status_code == 200
        assert gc.get_threshold()[0] <= 1000


async def test_a_stall_of_the_running_service_is_logged_with_where_its_time_went(
    start_licensing: Any, gc_thresholds: None
) -> None:
    handler = Records()
    logger = logging.getLogger("tessera.stalls")
    logger.addHandler(handler)
    try:
        async with start_licensing(stall_log_ms=50) as h:
            await asyncio.sleep(0.1)
            time.sleep(0.25)  # noqa: ASYNC251 - the blocking call on the loop under test
            await asyncio.sleep(0.1)
            r = await h.http.get("/healthz")
            assert r.status_code == 200
    finally:
        logger.removeHandler(handler)
    stalls = [m for m in handler.messages if m.getMessage() == "loop.stall"]
    assert stalls, "the held loop was not reported"
    worst = max(stalls, key=lambda m: m.late_ms)  # type: ignore[attr-defined]
    assert worst.levelno == logging.WARNING
    assert worst.late_ms >= 200  # type: ignore[attr-defined]
    assert worst.cpu_ms < worst.late_ms  # type: ignore[attr-defined]  # blocked, not busy
    assert {"gc_ms", "runq_ms", "blocked_ms", "faults", "preempted"} <= vars(worst).keys()


async def test_no_stall_watch_unless_asked(start_licensing: Any, gc_thresholds: None) -> None:
    before = list(gc.callbacks)
    async with start_licensing():
        assert not any(t.get_name() == "loop-watch" for t in asyncio.all_tasks())
        assert gc.callbacks == before
