"""What stops the event loop: a lag monitor and garbage-collection timing, cheap enough to
leave on (docs/performance.md, "Validate's stall").

- `GcClock` times every collection through `gc.callbacks` (generation, wall and CPU time,
  objects collected) and logs `gc.pause` for one that took `threshold` or more.
- `LoopWatch` wakes every `interval`; when it wakes `threshold` or more late, the loop was
  held, and it logs `loop.stall` with where the time went, from the loop thread's own
  accounting rather than the wall clock:

  - `cpu_ms`: CPU the loop's thread used meanwhile (our code, or a collection: `gc_ms`);
  - `runq_ms`: time it was ready to run but waited for a CPU (the machine was busy: other
    processes, not this one; Linux's schedstat, None elsewhere);
  - `blocked_ms`: the rest, off the CPU and not waiting for one: a blocking call in the
    loop's thread (a full pipe on a log write, a page fault, a sleep);
  - `faults` (major page faults) and `preempted` (involuntary context switches).

  So a stall on a shared machine tells whether it was ours without a quiet machine.

Both keep counters (`stalls`, `worst`, per-generation collections and pause time) that a
metric or a test can read. `watch(threshold_ms)` starts both on the running loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("tessera.stalls")


@dataclass
class GcClock:
    """Times collections. Install once per process with `start()`."""

    threshold: float = 0.01  # seconds: collections this long or longer are logged
    collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    seconds: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    worst: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    _began: float = 0.0
    _cpu_began: float = 0.0

    @property
    def total(self) -> float:
        """Seconds spent collecting since `start()`."""
        return sum(self.seconds)

    def start(self) -> None:
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            self._cpu_began = time.thread_time()
            return
        took = time.perf_counter() - self._began
        generation = int(info["generation"])
        self.collections[generation] += 1
        self.seconds[generation] += took
        self.worst[generation] = max(self.worst[generation], took)
        if took >= self.threshold:
            log.warning(
                "gc.pause",
                extra={
                    "generation": generation,
                    "ms": round(took * 1000, 2),
                    "cpu_ms": round((time.thread_time() - self._cpu_began) * 1000, 2),
                    "collected": info.get("collected"),
                    "uncollectable": info.get("uncollectable"),
                    "counts": gc.get_count(),
                    "thresholds": gc.get_threshold(),
                    "frozen": gc.get_freeze_count(),
                },
            )


# The loop thread's own counters where there are (Linux); the process's elsewhere (macOS).
_RUSAGE = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)


class _ThreadClock:
    """The calling thread's CPU, run-queue wait, page faults and context switches."""

    def __init__(self) -> None:
        self._schedstat: int | None = None
        with contextlib.suppress(OSError):
            # Linux: "<ns on cpu> <ns waiting on a run queue> <slices>" of this thread.
            self._schedstat = os.open("/proc/thread-self/schedstat", os.O_RDONLY)

    def read(self) -> tuple[float, float | None, int, int]:
        usage = resource.getrusage(_RUSAGE)
        runq: float | None = None
        if self._schedstat is not None:
            try:
                runq = int(os.pread(self._schedstat, 64, 0).split()[1]) / 1e9
            except (OSError, IndexError, ValueError):
                runq = None
        return usage.ru_utime + usage.ru_stime, runq, usage.ru_majflt, usage.ru_nivcsw

    def close(self) -> None:
        if self._schedstat is not None:
            os.close(self._schedstat)
            self._schedstat = None


@dataclass
class LoopWatch:
    """Counts and logs the event loop's stalls; run `run()` as a task on the loop."""

    interval: float = 0.02
    threshold: float = 0.05
    gc_clock: GcClock | None = None
    stalls: int = 0
    worst: float = 0.0
    # Where the stalls' time went, summed: the loop thread's CPU, waiting for a CPU, other.
    cpu: float = 0.0
    runq: float = 0.0
    blocked: float = 0.0

    async def run(self) -> None:
        clock = _ThreadClock()  # opened here: on the loop's own thread
        try:
            await self._watch(clock)
        finally:
            clock.close()

    async def _watch(self, clock: _ThreadClock) -> None:
        began = time.perf_counter()
        cpu, runq, faults, preempted = clock.read()
        collecting = self._collecting()
        while True:
            await asyncio.sleep(self.interval)
            now = time.perf_counter()
            cpu2, runq2, faults2, preempted2 = clock.read()
            collecting2 = self._collecting()
            late = now - began - self.interval
            if late >= self.threshold:
                used = cpu2 - cpu
                waited = None if runq is None or runq2 is None else runq2 - runq
                off = max(0.0, (now - began) - used - (waited or 0.0))
                self.stalls += 1
                self.worst = max(self.worst, late)
                self.cpu += used
                self.runq += waited or 0.0
                self.blocked += off
                log.warning(
                    "loop.stall",
                    extra={
                        "late_ms": round(late * 1000, 1),
                        # over the whole wait (interval + lateness)
                        "cpu_ms": round(used * 1000, 1),
                        "gc_ms": round((collecting2 - collecting) * 1000, 1),
                        "runq_ms": None if waited is None else round(waited * 1000, 1),
                        "blocked_ms": round(off * 1000, 1),
                        "faults": faults2 - faults,
                        "preempted": preempted2 - preempted,
                    },
                )
            began, cpu, runq, faults, preempted = now, cpu2, runq2, faults2, preempted2
            collecting = collecting2

    def _collecting(self) -> float:
        return self.gc_clock.total if self.gc_clock is not None else 0.0


def watch(threshold_ms: float) -> tuple[LoopWatch, asyncio.Task[None]] | None:
    """Start a GC clock and a loop watch on the running loop; None when `threshold_ms` is 0
    (off). Collections are logged from 10 ms (or the threshold, if lower)."""
    if threshold_ms <= 0:
        return None
    threshold = threshold_ms / 1000
    clock = GcClock(threshold=min(threshold, 0.01))
    clock.start()
    watcher = LoopWatch(interval=min(0.02, threshold), threshold=threshold, gc_clock=clock)
    task = asyncio.get_running_loop().create_task(watcher.run(), name="loop-watch")
    task.add_done_callback(lambda _: clock.stop())
    return watcher, task
