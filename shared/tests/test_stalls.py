"""The stall instruments: a held loop is seen and said where its time went (our CPU, or
blocked off the CPU), and every garbage collection is timed by generation."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Iterator

import pytest

from tessera.shared import stalls


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def named(self, message: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.getMessage() == message]


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("tessera.stalls")
    logger.addHandler(handler)
    before = logger.level
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(before)


def spin(seconds: float) -> None:
    """Hold the CPU (and so the loop) without sleeping."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


async def held(by: Callable[[], object], watcher: stalls.LoopWatch) -> None:
    task = asyncio.create_task(watcher.run())
    await asyncio.sleep(0.05)  # a few wake-ups first
    by()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def worst(records: Records) -> logging.LogRecord:
    # On a shared machine the scheduler may add a stall of its own: judge the longest.
    return max(records.named("loop.stall"), key=lambda r: r.late_ms)  # type: ignore[attr-defined]


async def test_a_blocking_call_in_the_loop_is_a_stall_spent_off_the_cpu(records: Records) -> None:
    watcher = stalls.LoopWatch(interval=0.01, threshold=0.1)
    await held(lambda: time.sleep(0.3), watcher)
    assert watcher.stalls >= 1
    assert watcher.worst >= 0.28
    stall = worst(records)
    assert stall.late_ms >= 280  # type: ignore[attr-defined]
    assert stall.cpu_ms < 100  # type: ignore[attr-defined]
    assert stall.blocked_ms + (stall.runq_ms or 0) >= 200  # type: ignore[attr-defined]
    assert stall.gc_ms == 0  # type: ignore[attr-defined]


async def test_our_own_cpu_holding_the_loop_is_told_apart(records: Records) -> None:
    watcher = stalls.LoopWatch(interval=0.01, threshold=0.1)
    await held(lambda: spin(0.3), watcher)
    assert watcher.stalls >= 1
    stall = worst(records)
    assert stall.cpu_ms >= 290  # type: ignore[attr-defined]
    assert watcher.cpu >= 0.29


async def test_a_collection_holding_the_loop_is_counted_as_gc_time(records: Records) -> None:
    clock = stalls.GcClock(threshold=10.0)  # time every collection, log none
    clock.start()
    watcher = stalls.LoopWatch(interval=0.01, threshold=0.001, gc_clock=clock)

    def collect() -> None:
        garbage: list[list[object]] = []
        for _ in range(100_000):  # cycles only the collector frees
            node: list[object] = []
            node.append(node)
            garbage.append(node)
        del garbage
        gc.collect()

    try:
        await held(collect, watcher)
    finally:
        clock.stop()
    assert clock.collections[2] >= 1
    assert clock.seconds[2] > 0
    assert max(r.gc_ms for r in records.named("loop.stall")) > 0  # type: ignore[attr-defined]


def test_every_collection_is_timed_by_generation_and_slow_ones_are_logged(
    records: Records,
) -> None:
    clock = stalls.GcClock(threshold=0.0)
    clock.start()
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        clock.stop()
    assert clock.collections[0] >= 1
    assert clock.collections[2] >= 1
    assert clock.worst[2] > 0
    generations = [r.generation for r in records.named("gc.pause")]  # type: ignore[attr-defined]
    assert 0 in generations
    assert 2 in generations
    gc.collect(2)
    assert clock.collections[2] == generations.count(2)  # stopped: no longer counting


async def test_watch_is_off_at_zero_and_on_otherwise() -> None:
    assert stalls.watch(0) is None
    watching = stalls.watch(30)
    assert watching is not None
    watcher, task = watching
    assert watcher.threshold == pytest.approx(0.03)
    assert watcher.gc_clock is not None
    assert watcher.gc_clock._on_gc in gc.callbacks
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert watcher.gc_clock._on_gc not in gc.callbacks
