"""The transactional outbox: write an event in the same transaction as the change that
caused it; a relay publishes it to JetStream later with `Nats-Msg-Id` = its id.

Nothing is lost (the row stays until JetStream acknowledges it, through any NATS outage)
and nothing is doubled by the relay (rows are claimed with `FOR UPDATE SKIP LOCKED`, so
replicas never publish the same row at once; JetStream's de-duplication window catches a
publish whose acknowledgement was lost).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import asyncpg
from opentelemetry import propagate, trace

from tessera.shared.db.notified import NotifiedLoop
from tessera.shared.events.envelope import Event
from tessera.shared.events.topology import STREAMS
from tessera.shared.metrics import OUTBOX_BACKLOG, OUTBOX_PUBLISHED

log = logging.getLogger("tessera.outbox")
tracer = trace.get_tracer("tessera.outbox")

NOTIFY_CHANNEL = "tessera_outbox"


async def add(conn: asyncpg.Connection, event: Event) -> None:
    """Write `event` to the outbox on `conn`; the caller's transaction commits it."""
    headers: dict[str, str] = {}
    propagate.inject(headers)  # keeps the caller's trace for the relay's publish
    await conn.execute(
        "INSERT INTO outbox (id, subject, payload, headers) VALUES ($1, $2, $3::jsonb, $4::jsonb)",
        event.event_id,
        event.publish_subject(),
        event.model_dump_json(),
        json.dumps(headers),
    )


@dataclass(frozen=True)
class OutboxRow:
    id: UUID
    subject: str
    payload: str
    headers: dict[str, str]


Publish = Callable[[OutboxRow], Awaitable[None]]


# A stream that keeps one message per subject (APIKEYS) holds states, not facts: the last
# message published on a subject is what every starting replica replays. So the rows of one
# such subject must reach NATS in the order they were written, and a row is claimed only
# when no earlier row of its subject is still pending. That holds within a batch (published
# concurrently) and across relay replicas (which skip each other's locked rows) alike; a
# key changed twice in a row takes two rounds. Rows of other streams are not held back.
RECORD_SUBJECTS = [f"{s.root}.%" for s in STREAMS if s.max_msgs_per_subject == 1]


async def claim_pending(conn: asyncpg.Connection, limit: int) -> list[OutboxRow]:
    rows = await conn.fetch(
        """
        SELECT id, subject, payload::text AS payload, headers::text AS headers
          FROM outbox
         WHERE published_at IS NULL
           AND NOT (
                 subject LIKE ANY($2::text[])
                 AND EXISTS (
                     SELECT 1 FROM outbox AS earlier
                      WHERE earlier.published_at IS NULL
                        AND earlier.subject = outbox.subject
                        AND (earlier.created_at, earlier.id) < (outbox.created_at, outbox.id)
                 )
           )
         ORDER BY created_at, id
         LIMIT $1
           FOR UPDATE SKIP LOCKED
        """,
        limit,
        RECORD_SUBJECTS,
    )
    return [OutboxRow(r["id"], r["subject"], r["payload"], json.loads(r["headers"])) for r in rows]


async def mark_published(conn: asyncpg.Connection, ids: list[UUID]) -> None:
    await conn.execute(
        "UPDATE outbox SET published_at = clock_timestamp() WHERE id = ANY($1::uuid[])", ids
    )


async def mark_failed(conn: asyncpg.Connection, ids: list[UUID], error: str) -> None:
    await conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1::uuid[])",
        ids,
        error[:500],
    )


async def purge_published(conn: asyncpg.Connection, older_than: timedelta) -> int:
    result = await conn.execute(
        "DELETE FROM outbox WHERE published_at < clock_timestamp() - $1::interval", older_than
    )
    return int(result.split()[-1])


async def pending_count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


class OutboxRelay:
    """Publishes pending outbox rows; woken by NOTIFY at commit, polling as a fallback."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        publish: Publish,
        *,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        max_backoff: float = 5.0,
        retention: timedelta = timedelta(days=7),
    ) -> None:
        self.pool = pool
        self.publish = publish
        self.batch_size = batch_size
        self.retention = retention
        self.loop = NotifiedLoop(
            pool,
            NOTIFY_CHANNEL,
            self._step,
            name="outbox.relay",
            poll_interval=poll_interval,
            max_backoff=max_backoff,
            every_so_often=self._purge,
        )

    @property
    def healthy(self) -> bool:
        return self.loop.healthy

    async def relay_once(self) -> int:
        """Publish one batch. Returns how many rows were published; raises `RelayError`
        (after committing what did succeed) when some publishes failed."""
        failure: BaseException | None = None
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await claim_pending(conn, self.batch_size)
            if not rows:
                return 0
            results = await asyncio.gather(
                *(self._publish_traced(row) for row in rows), return_exceptions=True
            )
            done = [row.id for row, res in zip(rows, results, strict=True) if res is None]
            failed = [row.id for row, res in zip(rows, results, strict=True) if res is not None]
            if done:
                await mark_published(conn, done)
                OUTBOX_PUBLISHED.add(len(done), {"outcome": "published"})
            if failed:
                OUTBOX_PUBLISHED.add(len(failed), {"outcome": "failed"})
                failure = next(r for r in results if isinstance(r, BaseException))
                await mark_failed(conn, failed, repr(failure))
        if failure is not None:
            raise RelayError(f"{len(failed)} of {len(rows)} publishes failed") from failure
        return len(done)

    async def _step(self) -> bool:
        return await self.relay_once() >= self.batch_size

    async def _publish_traced(self, row: OutboxRow) -> None:
        parent = propagate.extract(row.headers)
        with tracer.start_as_current_span(
            f"outbox relay {row.subject}",
            context=parent,
            kind=trace.SpanKind.PRODUCER,
            attributes={"messaging.message.id": str(row.id)},
        ):
            await self.publish(row)

    async def run(self) -> None:
        """Relay until cancelled; keeps going through NATS and Postgres outages."""
        await self.loop.run()

    async def close(self) -> None:
        await self.loop.close()

    async def measure_backlog(self, every: float) -> None:
        """Record the backlog every `every` seconds (only run when metrics are exported: a
        count of the pending rows, cheap on the partial index, never on a request's path)."""
        while True:
            try:
                async with self.pool.acquire() as conn:
                    OUTBOX_BACKLOG.set(await pending_count(conn))
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a missed sample, not a failure
                log.debug("outbox.backlog.unmeasured", extra={"error": repr(error)})
            await asyncio.sleep(every)

    async def _purge(self) -> None:
        async with self.pool.acquire() as conn:
            await purge_published(conn, self.retention)


class RelayError(RuntimeError):
    """Some rows of a batch could not be published; they stay pending."""
