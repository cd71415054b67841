"""Public events into the queue (fan-out), the outcome of each attempt, replays and the log.

The queue is Postgres: one `deliveries` row per endpoint x event, written in the same
transaction that claims the bus event in the inbox, so an event is queued for every
matching endpoint exactly once, and survives any restart until delivered or given up.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import asyncpg

from tessera.shared import outbox
from tessera.shared.events.webhooks import EndpointDisabled
from tessera.shared.http.problems import NotFound, Problem
from tessera.shared.sellers import Tenant
from tessera.webhooks.catalogue import service as catalogue
from tessera.webhooks.catalogue.schemas import PublicEvent
from tessera.webhooks.deliveries import queries
from tessera.webhooks.deliveries.schemas import AttemptOut
from tessera.webhooks.deliveries.sender import Outcome

log = logging.getLogger("tessera.webhooks.deliveries")


class PayloadTooLarge(Problem):
    status = 422
    slug = "payload-too-large"
    title = "The event is larger than a webhook may be"


async def fan_out(
    conn: asyncpg.Connection, tenant: Tenant, event: PublicEvent, max_bytes: int
) -> int:
    """Keep the public event and queue it for the tenant's endpoints that want it (on
    `conn`, in the caller's transaction). Returns how many deliveries were queued."""
    body = catalogue.body_of(event)
    if len(body.encode()) > max_bytes:
        # Never sent rather than cut: a receiver could not verify a truncated body.
        log.error("webhooks.event.too_large", extra={"event": event.id, "type": event.type})
        return 0
    event_id = catalogue.event_uuid(event.id)
    if not await queries.insert_event(conn, tenant, event_id, event.type, body, event.timestamp):
        return 0
    return await queries.fan_out(conn, tenant, event_id, event.type)


async def wake_workers(conn: asyncpg.Connection) -> None:
    """An endpoint turned on: its queued deliveries are due now, on every replica."""
    await queries.notify_due(conn)


async def queue_test(
    conn: asyncpg.Connection, tenant: Tenant, endpoint_id: UUID, event: PublicEvent
) -> None:
    """Keep a `webhook.test` event and queue it for that one endpoint."""
    event_id = catalogue.event_uuid(event.id)
    body = catalogue.body_of(event)
    await queries.insert_event(conn, tenant, event_id, event.type, body, event.timestamp)
    await queries.queue_one(conn, endpoint_id, event_id)


async def replay_one(
    conn: asyncpg.Connection, tenant: Tenant, endpoint_id: UUID, public_event_id: str
) -> int:
    try:
        event_id = catalogue.event_uuid(public_event_id)
    except ValueError:
        raise NotFound("No such event.") from None
    if not await queries.tenant_has_event(conn, tenant, event_id):
        raise NotFound("No such event.")
    if not await queries.queue_one(conn, endpoint_id, event_id):
        raise NotFound("No such event.")  # swept by retention meanwhile
    return 1


async def replay_since(conn: asyncpg.Connection, endpoint_id: UUID, since: datetime) -> int:
    return await queries.queue_since(conn, endpoint_id, since)


def retry_delay(
    attempts_made: int, schedule: Sequence[float], jitter: float, rng: random.Random
) -> float | None:
    """Seconds until the next attempt after `attempts_made` attempts failed (None: give up):
    the schedule's delay, spread by +-`jitter`."""
    if attempts_made > len(schedule):
        return None
    delay = schedule[attempts_made - 1]
    return delay * (1 + rng.uniform(-jitter, jitter))


async def record_outcome(
    pool: asyncpg.Pool,
    row: asyncpg.Record,
    outcome: Outcome,
    retry_in: float | None,
    disable_after_seconds: float,
) -> None:
    """The attempt in the log, and the delivery and its endpoint updated: delivered, due
    again later, or given up; an endpoint failing for too long is disabled."""
    attempt = row["attempts"] + 1
    async with pool.acquire() as conn, conn.transaction():
        await queries.log_attempt(
            conn, row["id"], row["endpoint_id"], row["event_id"], attempt, outcome.status_code,
            outcome.latency_ms, outcome.excerpt, outcome.error,
        )  # fmt: skip
        if outcome.ok:
            await queries.mark_delivered(conn, row["id"], row["claim"])
            await queries.endpoint_succeeded(conn, row["endpoint_id"])
            return
        await queries.mark_failed_attempt(conn, row["id"], row["claim"], retry_in)
        disabled = await queries.endpoint_failed(conn, row["endpoint_id"], disable_after_seconds)
        if disabled is not None:
            # In this transaction: the seller's owners are mailed (by auth) exactly when the
            # endpoint is off.
            await outbox.add(conn, endpoint_disabled(disabled))
            log.warning("webhooks.endpoint.disabled", extra={"endpoint": str(row["endpoint_id"])})


def shown_url(url: str) -> str:
    """The endpoint's URL without its query or fragment: a token a seller put there must not
    travel on the bus, sit in auth's mail queue and reach the mail provider."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def endpoint_disabled(endpoint: asyncpg.Record) -> EndpointDisabled:
    return EndpointDisabled(
        seller_id=endpoint["seller_id"], mode=endpoint["mode"], endpoint_id=endpoint["id"],
        url=shown_url(endpoint["url"]), description=endpoint["description"],
        failing_since=endpoint["failing_since"],
    )  # fmt: skip


async def attempts(
    conn: asyncpg.Connection, endpoint_id: UUID, limit: int, before: int | None
) -> list[AttemptOut]:
    rows = await queries.attempts_of(conn, endpoint_id, limit, before)
    return [
        AttemptOut(**{**dict(row), "event_id": catalogue.public_id(row["event_id"])})
        for row in rows
    ]
