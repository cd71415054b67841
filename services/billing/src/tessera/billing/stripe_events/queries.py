"""SQL of `stripe_events`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

import asyncpg
import orjson
from pydantic import BaseModel

from tessera.shared.sellers import Mode, Tenant


@dataclass(frozen=True)
class Delivery:
    """One verified delivery, as the ingress records it."""

    event_id: str
    event_type: str
    livemode: bool
    created: datetime
    payload: str
    # received; ignored (a type outside the allowlist, an event no tenant owns); held (a
    # connected account's event waiting for its connection, `hold_key` AWAITING_CONNECTION)
    status: str
    detail: str | None
    trace_headers: dict[str, str]
    tenant: Tenant
    # The connected account it came from (its `account`); None: the platform's own.
    stripe_account: str | None = None
    hold_key: str | None = None


# A repeat delivery: its event id and the tenant it came for.
RepeatOf = tuple[str, Tenant]


async def record_deliveries(
    conn: asyncpg.Connection, deliveries: list[Delivery]
) -> tuple[set[str], dict[RepeatOf, int]]:
    """Record deliveries in one statement. Returns the ids recorded for the first time, and
    how many deliveries of each other id came (repeats of an event already recorded), for
    `count_repeats`. Repeats within the batch are folded into one row whose `attempts` counts
    them. Concurrent deliveries of one id serialise on the primary key: exactly one inserts.
    Rows go in in id order, so two replicas' batches that share ids wait on each other rather
    than deadlock; `DO NOTHING` takes no row lock, so a repeat of an event the applier holds
    locked does not wait for the applier."""
    firsts: dict[str, Delivery] = {}
    deliveries_of: dict[str, int] = {}
    for d in deliveries:
        deliveries_of[d.event_id] = deliveries_of.get(d.event_id, 0) + 1
        firsts.setdefault(d.event_id, d)
    rows = await conn.fetch(
        """
        INSERT INTO stripe_events
               (id, type, livemode, stripe_created, payload, status, detail, trace_headers,
                processed_at, attempts, seller_id, mode, stripe_account, hold_key)
        SELECT d.id, d.type, d.livemode, to_timestamp(d.created), d.payload, d.status,
               d.detail, d.trace_headers,
               CASE WHEN d.status = 'received' THEN NULL ELSE clock_timestamp() END, d.attempts,
               d.seller_id, d.mode, d.stripe_account, d.hold_key
          FROM jsonb_to_recordset($1::jsonb)
               AS d(id text, type text, livemode bool, created float8, payload jsonb,
                    status text, detail text, trace_headers jsonb, attempts int,
                    seller_id uuid, mode text, stripe_account text, hold_key text)
        ON CONFLICT (id) DO NOTHING
        RETURNING id
        """,
        batch_document([firsts[i] for i in sorted(firsts)], deliveries_of),
    )
    inserted = {r["id"] for r in rows}
    repeats = {(i, firsts[i].tenant): n for i, n in deliveries_of.items() if i not in inserted}
    return inserted, repeats


async def count_repeats(conn: asyncpg.Connection, repeats: dict[RepeatOf, int]) -> None:
    """Add repeat deliveries to their events' `attempts` (only on a row of the tenant they
    came for). One event per statement (each its own transaction): the update waits for a
    row the applier holds, and holding no other row lock meanwhile, it cannot close a
    deadlock with the applier's held-event locks."""
    for event_id, tenant in sorted(repeats, key=lambda r: r[0]):
        await conn.execute(
            "UPDATE stripe_events SET attempts = attempts + $2"
            " WHERE id = $1 AND seller_id = $3 AND mode = $4",
            event_id,
            repeats[(event_id, tenant)],
            tenant.seller_id,
            tenant.mode,
        )


def batch_document(batch: list[Delivery], deliveries_of: dict[str, int]) -> str:
    """The batch as one JSON array, each payload spliced in as it came: it is JSON already
    (the ingress parsed it), and one parameter costs the client a fraction of what nine
    arrays of values did."""
    rows = []
    for d in batch:
        fields = orjson.dumps(
            {
                "id": d.event_id,
                "type": d.event_type,
                "livemode": d.livemode,
                "created": d.created.timestamp(),
                "status": d.status,
                "detail": d.detail,
                "trace_headers": d.trace_headers,
                "attempts": deliveries_of[d.event_id],
                "seller_id": str(d.tenant.seller_id),
                "mode": d.tenant.mode,
                "stripe_account": d.stripe_account,
                "hold_key": d.hold_key,
            }
        ).decode()
        rows.append(f'{fields[:-1]},"payload":{d.payload}}}')
    return f"[{','.join(rows)}]"


@dataclass(frozen=True)
class ReceivedEvent:
    id: str
    type: str
    payload: dict[str, Any]
    trace_headers: dict[str, str]
    tenant: Tenant


async def claim_received(conn: asyncpg.Connection, limit: int) -> list[ReceivedEvent]:
    """The oldest events waiting to be applied, locked for this transaction; replicas skip
    each other's. The one read across tenants: the applier serves every tenant, and each
    event is then applied as the tenant it was recorded for."""
    rows = await conn.fetch(
        """
        SELECT id, type, payload::text AS payload, trace_headers::text AS trace_headers,
               seller_id, mode
          FROM stripe_events
         WHERE status = 'received'
         ORDER BY received_at, id
         LIMIT $1
           FOR UPDATE SKIP LOCKED
        """,
        limit,
    )
    return [
        ReceivedEvent(
            r["id"],
            r["type"],
            json.loads(r["payload"]),
            json.loads(r["trace_headers"]),
            # The column's CHECK allows only the two modes.
            Tenant(r["seller_id"], cast(Mode, r["mode"])),
        )
        for r in rows
    ]


async def lock_payments(conn: asyncpg.Connection, payment_keys: list[str]) -> None:
    """Take a whole batch's payment locks at once, in one order every batch follows, so two
    batches sharing payments wait for each other instead of deadlocking."""
    await conn.execute(
        """
        SELECT pg_advisory_xact_lock(h)
          FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k
                ORDER BY h) AS ordered
        """,
        payment_keys,
    )


async def lock_payment(conn: asyncpg.Connection, payment_key: str) -> None:
    """Serialise, across replicas, the events of one payment: a refund applied while its
    purchase commits elsewhere would otherwise see no order, and the purchase no held
    refund."""
    await lock_payments(conn, [payment_key])


async def set_outcome(
    conn: asyncpg.Connection,
    tenant: Tenant,
    event_id: str,
    status: str,
    detail: str | None,
    order_id: UUID | None = None,
    hold_key: str | None = None,
) -> None:
    await conn.execute(
        """
        UPDATE stripe_events
           SET status = $2, detail = $3, order_id = COALESCE($4, order_id), hold_key = $5,
               processed_at = clock_timestamp()
         WHERE id = $1 AND seller_id = $6 AND mode = $7
        """,
        event_id,
        status,
        detail,
        order_id,
        hold_key,
        tenant.seller_id,
        tenant.mode,
    )


@dataclass(frozen=True)
class StoredEvent:
    id: str
    type: str
    payload: dict[str, Any]
    status: str
    # The connected account it came from, and its Stripe mode (read by `lock_one` only).
    stripe_account: str | None = None
    livemode: bool = False


def to_stored(row: asyncpg.Record) -> StoredEvent:
    return StoredEvent(row["id"], row["type"], json.loads(row["payload"]), row["status"])


async def lock_held(conn: asyncpg.Connection, tenant: Tenant, hold_key: str) -> list[StoredEvent]:
    rows = await conn.fetch(
        """
        SELECT id, type, payload::text AS payload, status FROM stripe_events
         WHERE seller_id = $2 AND mode = $3 AND status = 'held' AND hold_key = $1
         ORDER BY stripe_created, received_at
           FOR UPDATE
        """,
        hold_key,
        tenant.seller_id,
        tenant.mode,
    )
    return [to_stored(r) for r in rows]


async def lock_one(conn: asyncpg.Connection, tenant: Tenant, event_id: str) -> StoredEvent | None:
    row = await conn.fetchrow(
        "SELECT id, type, payload::text AS payload, status, stripe_account, livemode"
        " FROM stripe_events"
        " WHERE id = $1 AND seller_id = $2 AND mode = $3 FOR UPDATE",
        event_id,
        tenant.seller_id,
        tenant.mode,
    )
    if row is None:
        return None
    stored = to_stored(row)
    return StoredEvent(
        stored.id, stored.type, stored.payload, stored.status, row["stripe_account"],
        row["livemode"],
    )  # fmt: skip


async def source_of(
    conn: asyncpg.Connection, tenant: Tenant, event_id: str
) -> tuple[str | None, datetime | None]:
    """The connected account a recorded event came from, and when Stripe made the event."""
    row = await conn.fetchrow(
        "SELECT stripe_account, stripe_created FROM stripe_events"
        " WHERE id = $1 AND seller_id = $2 AND mode = $3",
        event_id,
        tenant.seller_id,
        tenant.mode,
    )
    return (row["stripe_account"], row["stripe_created"]) if row else (None, None)


class EventSummary(BaseModel):
    """A received Stripe event as the admin list shows it."""

    id: str
    type: str
    status: str
    detail: str | None
    order_id: UUID | None
    attempts: int
    livemode: bool
    received_at: datetime
    processed_at: datetime | None


async def search(
    conn: asyncpg.Connection,
    tenant: Tenant,
    status: str | None,
    event_type: str | None,
    limit: int,
    offset: int,
) -> list[EventSummary]:
    rows = await conn.fetch(
        """
        SELECT id, type, status, detail, order_id, attempts, livemode, received_at, processed_at
          FROM stripe_events
         WHERE seller_id = $5 AND mode = $6
           AND ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR type = $2)
         ORDER BY received_at DESC
         LIMIT $3 OFFSET $4
        """,
        status,
        event_type,
        limit,
        offset,
        tenant.seller_id,
        tenant.mode,
    )
    return [EventSummary.model_validate(dict(r)) for r in rows]


# What the applier listens on: the table's insert trigger (billing_0003) and `wake_applier`.
NOTIFY_CHANNEL = "billing_stripe_events"


async def wake_applier(conn: asyncpg.Connection) -> None:
    """At commit: rows became `received` other than by an insert (which the trigger tells)."""
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)


# The `hold_key` of a connected account's event that waits for a connection of its account.
# Written out in the SQL below (not a parameter), so the planner matches the partial index
# `stripe_events_awaiting_connection` whatever plan it caches.
AWAITING_CONNECTION = "awaiting-connection"


async def release_awaiting(
    conn: asyncpg.Connection,
    waiting_under: Tenant,
    account_id: str,
    tenant: Tenant,
    authorized_at: datetime,
) -> tuple[int, int]:
    """Hand the account's waiting events (recorded under `waiting_under`, the home seller
    in the connection's mode) to the tenant that has now connected it, to be applied
    (`received`; the caller wakes the applier). Only events Stripe made once the account
    authorized the platform (to the second, Stripe's precision) are the connection's: an
    older one is a late delivery from an earlier connection of the account, perhaps another
    seller's, and is ignored. Returns (released, ignored)."""
    rows = await conn.fetch(
        """
        UPDATE stripe_events
           SET status = CASE WHEN e.mine THEN 'received' ELSE 'ignored' END,
               detail = CASE WHEN e.mine THEN NULL
                        ELSE 'made before ' || $3 || ' authorized its current connection;'
                             || ' recorded, not applied' END,
               seller_id = CASE WHEN e.mine THEN $5 ELSE seller_id END,
               mode = CASE WHEN e.mine THEN $6 ELSE mode END,
               hold_key = NULL,
               processed_at = CASE WHEN e.mine THEN NULL ELSE clock_timestamp() END
          FROM (SELECT id, stripe_created >= date_trunc('second', $4::timestamptz) AS mine
                  FROM stripe_events
                 WHERE seller_id = $1 AND mode = $2 AND stripe_account = $3
                   AND status = 'held' AND hold_key = 'awaiting-connection'
                   FOR UPDATE) AS e
         WHERE stripe_events.id = e.id
        RETURNING e.mine
        """,
        waiting_under.seller_id,
        waiting_under.mode,
        account_id,
        authorized_at,
        tenant.seller_id,
        tenant.mode,
    )
    released = sum(1 for r in rows if r["mine"])
    return released, len(rows) - released


async def accounts_awaiting(conn: asyncpg.Connection) -> list[tuple[str, Mode]]:
    """Every (account, mode) some event waits for. Across tenants on purpose: a waiting
    event has no tenant yet."""
    rows = await conn.fetch(
        "SELECT DISTINCT stripe_account, mode FROM stripe_events"
        " WHERE status = 'held' AND hold_key = 'awaiting-connection'"
        " AND stripe_account IS NOT NULL"
    )
    return [(r["stripe_account"], cast(Mode, r["mode"])) for r in rows]


async def expire_awaiting(conn: asyncpg.Connection, older_than: timedelta) -> int:
    """Waiting events received more than `older_than` ago are given up: `ignored`."""
    done = await conn.fetch(
        """
        UPDATE stripe_events
           SET status = 'ignored', hold_key = NULL, processed_at = clock_timestamp(),
               detail = 'no seller connected ' || stripe_account || ' in ' || mode
                        || ' mode within ' || $1 || '; recorded, not applied'
         WHERE status = 'held' AND hold_key = 'awaiting-connection'
           AND received_at < clock_timestamp() - $2::interval
        RETURNING id
        """,
        _days(older_than),
        older_than,
    )
    return len(done)


def _days(span: timedelta) -> str:
    return f"{span.days} days" if span.days else f"{int(span.total_seconds())} seconds"
