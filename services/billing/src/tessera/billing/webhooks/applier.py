"""Apply the Stripe events the ingress recorded: in arrival order, a batch per transaction.

Each event is applied in a savepoint of the batch's transaction, together with the outbox
row it leads to and its recorded outcome, so an event is applied exactly once: the batch
commits (events and their effects together) or none of it does and the rows are claimed
again. Replicas claim with `FOR UPDATE SKIP LOCKED` and never take the same event.

Several batches are applied at once (each claims what the others have not). An event
whose handler fails in a way nobody foresaw is recorded as `failed` (an admin can
replay it) rather than retried forever, which would hold up every event behind it. A
failure of the database itself (a dropped connection, a deadlock) rolls the batch back and
the loop retries it.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from opentelemetry import propagate, trace

from tessera.billing.stripe_events import awaiting, queries
from tessera.billing.stripe_events.queries import ReceivedEvent
from tessera.billing.subscriptions.service import GraceDays, default_grace
from tessera.billing.webhooks import service
from tessera.billing.webhooks.metrics import applied
from tessera.shared.db.notified import NotifiedLoop
from tessera.shared.http.problems import dependency_errors

log = logging.getLogger("tessera.billing.webhooks")
tracer = trace.get_tracer("tessera.billing.webhooks")

NOTIFY_CHANNEL = queries.NOTIFY_CHANNEL

# Worth retrying as a whole batch: the database or the connection failed, not the event.
TRANSIENT = (
    *dependency_errors(),
    asyncpg.exceptions.TransactionRollbackError,  # a deadlock or serialisation failure
    ConnectionError,
    OSError,
)


class WebhookApplier:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        batch_size: int = 25,
        concurrency: int = 4,
        grace_days: GraceDays = default_grace,
    ) -> None:
        self.pool = pool
        self.grace_days = grace_days
        self.batch_size = batch_size
        # Batches in flight at once (each on its own connection): applying is mostly waiting
        # for Postgres, so one batch at a time left the process idle under load.
        self.concurrency = concurrency
        self.loop = NotifiedLoop(
            pool, NOTIFY_CHANNEL, self.apply_batches, name="billing.applier",
            every_so_often=self.sweep_awaiting,
        )  # fmt: skip
        self.swept = False

    async def run(self) -> None:
        await self.loop.run()

    async def close(self) -> None:
        await self.loop.close()

    async def sweep_awaiting(self) -> None:
        """Connected accounts' events waiting for their connection (stripe_events/awaiting.py):
        at start (a restart loses none) and every so often (they expire)."""
        await awaiting.sweep(self.pool)
        self.swept = True

    async def apply_batches(self) -> bool:
        """Up to `concurrency` batches at once; True when any was full."""
        if not self.swept:
            await self.sweep_awaiting()
        results = await asyncio.gather(
            *(self.apply_batch() for _ in range(self.concurrency)), return_exceptions=True
        )
        # Every batch has finished (committed or rolled back) before a failure is raised, so
        # no batch outlives the round that started it.
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return any(results)

    async def apply_batch(self) -> bool:
        """Apply up to one batch; True when it was full (more may be waiting)."""
        async with self.pool.acquire() as conn, conn.transaction():
            events = await queries.claim_received(conn, self.batch_size)
            keys = [k for e in events if (k := service.payment_key(e.payload["data"]["object"]))]
            if keys:
                await queries.lock_payments(conn, keys)
            outcomes = [
                (event.type, (await apply_one(conn, event, self.grace_days)).status)
                for event in events
            ]
        for event_type, status in outcomes:  # counted once the batch has committed
            applied(status, event_type)
        return len(events) >= self.batch_size


async def apply_one(
    conn: asyncpg.Connection, event: ReceivedEvent, grace_days: GraceDays = default_grace
) -> service.Outcome:
    with tracer.start_as_current_span(
        f"stripe apply {event.type}",
        context=propagate.extract(event.trace_headers),
        kind=trace.SpanKind.CONSUMER,
        attributes={"stripe.event.id": event.id, "stripe.event.type": event.type},
    ):
        try:
            async with conn.transaction():
                outcome = await service.apply(
                    conn,
                    event.tenant,
                    event.id,
                    event.type,
                    event.payload["data"]["object"],
                    service.Applying.of(event.payload, grace_days),
                )
                await service.save_outcome(conn, event.tenant, event.id, outcome)
            return outcome
        except TRANSIENT:
            raise
        except Exception:
            log.exception("billing.webhook.apply_failed", extra={"stripe_event": event.id})
            outcome = service.Outcome(
                "failed", "billing could not apply this event (see the logs); replay it"
            )
            await service.save_outcome(conn, event.tenant, event.id, outcome)
            return outcome
