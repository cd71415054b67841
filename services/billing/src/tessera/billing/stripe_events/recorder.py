"""Group commit for the ingress: the deliveries that arrive while one batch is being
written go into the next, one statement and one commit for all of them.

Recording is the ingress's whole cost in the database. Written one by one, each delivery
paid a pool checkout, a round trip and a commit (a WAL flush) of its own; under load the
batch grows by itself with the time a write takes, so a busy ingress does far fewer,
bigger writes and an idle one writes each delivery at once, as before. A delivery's
caller hears back only when the batch holding it has committed, so an answer still means
the event is stored.

A batch that Postgres refuses for one delivery's sake (a value it cannot store) is written
again one delivery at a time, so only that delivery fails; any other failure (the database
away, a timeout) fails the batch's callers at once, and the full stack answers them. Repeat
deliveries are added to their event's `attempts` apart from the write, in a task of their
own: that update waits for a row the applier holds, and the write must not.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging

import asyncpg

from tessera.billing.stripe_events import queries
from tessera.billing.stripe_events.queries import Delivery, RepeatOf

log = logging.getLogger("tessera.billing.webhooks")

Waiting = tuple[Delivery, "asyncio.Future[bool]"]

# Refusals that one delivery's content can cause (class 22 data exceptions, a value too big).
ONE_DELIVERYS_FAULT = (asyncpg.DataError, asyncpg.ProgramLimitExceededError)


class DeliveryRecorder:
    def __init__(self, *, max_batch: int = 256, max_batch_bytes: int = 8 * 1024 * 1024) -> None:
        self.max_batch = max_batch
        self.max_batch_bytes = max_batch_bytes
        self._pending: list[Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._counting: set[asyncio.Task[None]] = set()

    async def record(self, pool: asyncpg.Pool, delivery: Delivery) -> bool:
        """Store the delivery; True when it is the first of its event id."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._pending.append((delivery, future))
        # No await between the writer's last look at `_pending` and its end, so a writer
        # that is not done will see this delivery. A fresh context: the writer serves many
        # requests, not the one that happened to start it.
        writer = self._writer
        if writer is None or writer.done() or writer.get_loop() is not loop:
            self._writer = loop.create_task(
                self._write_pending(pool), context=contextvars.Context()
            )
        return await future

    async def _write_pending(self, pool: asyncpg.Pool) -> None:
        while self._pending:
            batch = self._next_batch()
            try:
                await self._write(pool, batch)
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)

    def _next_batch(self) -> list[Waiting]:
        """The oldest deliveries, up to `max_batch` of them and `max_batch_bytes` (at least one)."""
        size, count = 0, 0
        for delivery, _ in self._pending[: self.max_batch]:
            size += len(delivery.payload)
            if count and size > self.max_batch_bytes:
                break
            count += 1
        batch = self._pending[:count]
        del self._pending[:count]
        return batch

    async def _write(self, pool: asyncpg.Pool, batch: list[Waiting]) -> None:
        try:
            async with pool.acquire() as conn:
                inserted, repeats = await queries.record_deliveries(conn, [d for d, _ in batch])
        except ONE_DELIVERYS_FAULT:
            if len(batch) == 1:
                raise
            for one in batch:
                await self._write_alone(pool, one)
            return
        for delivery, future in batch:
            # One delivery per id is the first, even when the id came twice in this batch.
            first = delivery.event_id in inserted
            inserted.discard(delivery.event_id)
            if not future.done():
                future.set_result(first)
        if repeats:
            self._count_later(pool, repeats)

    async def _write_alone(self, pool: asyncpg.Pool, one: Waiting) -> None:
        try:
            await self._write(pool, [one])
        except ONE_DELIVERYS_FAULT as error:
            if not one[1].done():
                one[1].set_exception(error)

    def _count_later(self, pool: asyncpg.Pool, repeats: dict[RepeatOf, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._count(pool, repeats))
        self._counting.add(task)
        task.add_done_callback(self._counting.discard)

    async def _count(self, pool: asyncpg.Pool, repeats: dict[RepeatOf, int]) -> None:
        try:
            async with pool.acquire() as conn:
                await queries.count_repeats(conn, repeats)
        except Exception as error:  # a lost count of retries, not a lost event
            log.warning("billing.webhook.attempts_not_counted", extra={"error": repr(error)})
