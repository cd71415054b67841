"""Heartbeats are answered from memory (desktop/heartbeat.py) and recorded here: each
replica keeps the latest heartbeat of every machine it heard from and writes them all in one
statement every `heartbeat_flush_seconds`. A heartbeat thus costs no database round trip,
and a heartbeat interval of minutes dwarfs the second it may wait to be written.

The sweeper deactivates every machine whose policy requires heartbeats and that has been
silent past the interval and the grace: its seat is freed, MachineDeactivated (by
"heartbeat") goes out through the outbox and the audit log says why, in one transaction.
The app learns it at its next call (NOT_ACTIVATED).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import cast
from uuid import UUID

import asyncpg

from tessera.licensing.heartbeats import queries
from tessera.licensing.licenses.service import record_audit
from tessera.shared import outbox
from tessera.shared.events.licensing import MachineDeactivated
from tessera.shared.sellers import Mode, Tenant

log = logging.getLogger("tessera.licensing.heartbeats")

SWEEP_BATCH = 500


class Heartbeats:
    """The heartbeats heard since the last flush: activation id -> (when, the seat's new end
    if it holds a floating seat). No await: recorded on the hot path."""

    def __init__(self) -> None:
        self._pending: dict[UUID, tuple[float, float | None]] = {}

    def record(self, activation_id: UUID, at: float, seat_until: float | None) -> None:
        self._pending[activation_id] = (at, seat_until)

    def __len__(self) -> int:
        return len(self._pending)

    def take(self) -> dict[UUID, tuple[float, float | None]]:
        pending, self._pending = self._pending, {}
        return pending

    def give_back(self, batch: dict[UUID, tuple[float, float | None]]) -> None:
        """A batch that could not be written, kept (newer heartbeats win) for the next try."""
        for activation_id, beat in batch.items():
            newer = self._pending.get(activation_id)
            if newer is None or newer[0] < beat[0]:
                self._pending[activation_id] = beat


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


async def flush(pool: asyncpg.Pool, heartbeats: Heartbeats) -> int:
    """Write the pending heartbeats in one statement; the number written."""
    batch = heartbeats.take()
    if not batch:
        return 0
    ids = list(batch)
    try:
        await queries.flush(
            pool,
            ids,
            [_time(batch[i][0]) for i in ids],
            [None if (end := batch[i][1]) is None else _time(end) for i in ids],
        )
    except BaseException:
        heartbeats.give_back(batch)
        raise
    return len(ids)


async def keep_flushing(pool: asyncpg.Pool, heartbeats: Heartbeats, every: float) -> None:
    """Flush every `every` seconds for as long as the service runs (and once more on the way
    out, so a clean shutdown loses no heartbeat)."""
    try:
        while True:
            await asyncio.sleep(every)
            try:
                await flush(pool, heartbeats)
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("licensing.heartbeats.flush_failed", extra={"error": repr(error)})
    finally:
        if len(heartbeats):
            try:
                await asyncio.shield(flush(pool, heartbeats))
            except Exception as error:  # shutting down: say so, lose only this batch
                log.warning("licensing.heartbeats.final_flush_failed", extra={"error": repr(error)})


async def sweep(pool: asyncpg.Pool) -> int:
    """Deactivate the machines whose heartbeats lapsed; how many were."""
    total = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            lapsed = await queries.delete_lapsed(conn, SWEEP_BATCH)
            for a in lapsed:
                tenant = Tenant(a["seller_id"], cast(Mode, a["mode"]))
                await outbox.add(
                    conn,
                    MachineDeactivated(
                        activation_id=a["id"],
                        license_id=a["license_id"],
                        account_id=a["account_id"],
                        fingerprint_hash=a["fingerprint_hash"],
                        by="heartbeat",
                        seller_id=tenant.seller_id,
                        mode=tenant.mode,
                    ),
                )
                await record_audit(
                    conn,
                    tenant,
                    actor_id=None,
                    actor_role="system",
                    action="machine.heartbeat_lapsed",
                    license_id=a["license_id"],
                    activation_id=a["id"],
                    machine_name=a["machine_name"],
                    last_heartbeat_at=a["last_heartbeat_at"],
                )
        total += len(lapsed)
        if len(lapsed) < SWEEP_BATCH:
            return total


async def keep_sweeping(pool: asyncpg.Pool, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            swept = await sweep(pool)
        except (OSError, asyncpg.PostgresError) as error:
            log.warning("licensing.heartbeats.sweep_failed", extra={"error": repr(error)})
            continue
        if swept:
            log.info("licensing.heartbeats.swept", extra={"machines": swept})
