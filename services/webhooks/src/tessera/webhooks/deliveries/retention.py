"""Retention: the delivery log and the kept events do not grow without bound.

Every `RETENTION_SWEEP_SECONDS` each replica's worker sweeps, in batches of
`RETENTION_BATCH` rows (each batch its own short transaction, so no sweep holds locks for
long or blocks the deliveries' claims), what is older than `RETENTION_SECONDS` (90 days, as
Svix keeps messages): log rows of deliveries that are over (delivered or failed), then
events with no delivery still due and no attempt within the horizon (their deliveries and
log with them). Nothing still due is ever touched: a pending delivery keeps its event and
its log however old, and a replay that queues an old event again holds it against the sweep
(docs/webhooks.md, "Retention"). Replicas sweeping at once skip each other's rows.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg

from tessera.webhooks.deliveries import queries

log = logging.getLogger("tessera.webhooks.retention")


@dataclass(frozen=True)
class Swept:
    attempts: int
    events: int


async def sweep(pool: asyncpg.Pool, horizon_seconds: float, batch: int) -> Swept:
    """Sweep until a batch comes back short. Returns how many rows went."""
    attempts = events = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            done = await queries.sweep_attempts(conn, horizon_seconds, batch)
        attempts += done
        if done < batch:
            break
    while True:
        deleted = 0
        async with pool.acquire() as conn, conn.transaction():
            locked = await queries.lock_old_events(conn, horizon_seconds, batch)
            if locked:
                deleted = await queries.delete_finished_events(conn, locked, horizon_seconds)
        events += deleted
        # Short: nothing more is old. A batch that deleted nothing (each became due again
        # between the look and the lock) would come back the same: next sweep.
        if len(locked) < batch or not deleted:
            break
    return Swept(attempts, events)


async def run(pool: asyncpg.Pool, horizon_seconds: float, batch: int, every: float) -> None:
    """Sweep now and then every `every` seconds; an error is logged and tried next time."""
    while True:
        try:
            swept = await sweep(pool, horizon_seconds, batch)
            if swept.attempts or swept.events:
                log.info(
                    "webhooks.retention.swept",
                    extra={"attempts": swept.attempts, "events": swept.events},
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhooks.retention.failed")
        await asyncio.sleep(every)
