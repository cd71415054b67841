"""Group commit for the ingress: the deliveries that arrive while one batch is being
written go into the next, one statement and one commit for all of them.

Recording is the ingress's whole cost in the database. Written one by one, each delivery
paid a pool checkout, a round trip and a commit (a WAL flush) of its own; under load the
batch grows by itself with the time a write takes, so a busy ingress does far fewer,
bigger writes and an idle one writes each delivery at once, as before. A delivery's
caller hears back only when the batch holding it has committed, so an answer still means
the event is stored.

A batch that fails as a whole for a reason of its own (a value Postgres cannot store,
say) is written again one delivery at a time, so one bad delivery cannot fail the others;
a failure of the database itself fails the batch's callers (each gets the error).
"""

from __future__ import annotations

import asyncio

import asyncpg

from tessera.billing.webhooks import queries
from tessera.billing.webhooks.queries import Delivery
from tessera.shared.http.problems import dependency_errors

Waiting = tuple[Delivery, "asyncio.Future[bool]"]


class DeliveryRecorder:
    def __init__(self, *, max_batch: int = 256) -> None:
        self.max_batch = max_batch
        self._pending: list[Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, pool: asyncpg.Pool, delivery: Delivery) -> bool:
        """Store the delivery; True when it is the first of its event id."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((delivery, future))
        # No await between the writer's last look at `_pending` and its end, so a writer
        # that is not done will see this delivery.
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending(pool))
        return await future

    async def _write_pending(self, pool: asyncpg.Pool) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                await write(pool, batch)
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)


async def write(pool: asyncpg.Pool, batch: list[Waiting]) -> None:
    try:
        async with pool.acquire() as conn:
            firsts = await queries.record_deliveries(conn, [d for d, _ in batch])
    except dependency_errors():
        raise
    except Exception:
        if len(batch) == 1:
            raise
        for one in batch:
            await write_alone(pool, one)
        return
    for delivery, future in batch:
        # One delivery per id is the first, even when the id came twice in this batch.
        first = delivery.event_id in firsts
        firsts.discard(delivery.event_id)
        if not future.done():
            future.set_result(first)


async def write_alone(pool: asyncpg.Pool, one: Waiting) -> None:
    try:
        await write(pool, [one])
    except dependency_errors():
        raise
    except Exception as error:
        if not one[1].done():
            one[1].set_exception(error)
