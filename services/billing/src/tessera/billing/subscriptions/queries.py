"""SQL of `subscriptions` and `subscription_events`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from tessera.billing.subscriptions.state import Logged
from tessera.shared.sellers import Tenant

COLUMNS = (
    "id, stripe_account, stripe_customer_id, account_id, email, item_id, price_id, product,"
    ' tier, "interval", status, current_period_start, current_period_end,'
    " cancel_at_period_end, trial_end, past_due_since, started_at, ended_at, published,"
    " sequence, created_at, updated_at, checkout_session_id"
)


async def ensure(
    conn: asyncpg.Connection, tenant: Tenant, subscription_id: str, stripe_account: str | None
) -> asyncpg.Record:
    """The subscription's row, made if this is the first event about it, and locked. Its
    account, once an event names one, stays (every delivery of one subscription comes from
    the same account, so the first that names it sets it, in any order)."""
    await conn.execute(
        "INSERT INTO subscriptions (seller_id, mode, id, stripe_account) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (seller_id, mode, id) DO UPDATE"
        " SET stripe_account = coalesce(subscriptions.stripe_account, EXCLUDED.stripe_account)"
        " WHERE subscriptions.stripe_account IS NULL AND EXCLUDED.stripe_account IS NOT NULL",
        tenant.seller_id,
        tenant.mode,
        subscription_id,
        stripe_account,
    )
    row = await find(conn, tenant, subscription_id, for_update=True)
    assert row is not None
    return row


async def find(
    conn: asyncpg.Connection, tenant: Tenant, subscription_id: str, *, for_update: bool = False
) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM subscriptions"  # noqa: S608 - constants
        f" WHERE seller_id = $1 AND mode = $2 AND id = $3{lock}",
        tenant.seller_id,
        tenant.mode,
        subscription_id,
    )


async def of_account(
    conn: asyncpg.Connection, tenant: Tenant, account_id: UUID
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            f"SELECT {COLUMNS} FROM subscriptions"  # noqa: S608 - constants
            " WHERE seller_id = $1 AND mode = $2 AND account_id = $3"
            " ORDER BY started_at DESC NULLS LAST, id",
            tenant.seller_id,
            tenant.mode,
            account_id,
        )
    )


async def account_of_customer(
    conn: asyncpg.Connection, tenant: Tenant, stripe_customer_id: str
) -> tuple[UUID, str | None] | None:
    """The account (and email) another subscription of the same Stripe customer has."""
    row = await conn.fetchrow(
        "SELECT account_id, email FROM subscriptions WHERE seller_id = $1 AND mode = $2"
        " AND stripe_customer_id = $3 AND account_id IS NOT NULL LIMIT 1",
        tenant.seller_id,
        tenant.mode,
        stripe_customer_id,
    )
    return (row["account_id"], row["email"]) if row else None


async def set_account(
    conn: asyncpg.Connection,
    tenant: Tenant,
    subscription_id: str,
    account_id: UUID,
    email: str | None,
    stripe_customer_id: str | None,
) -> None:
    """The buyer, once known; never changed afterwards."""
    await conn.execute(
        """
        UPDATE subscriptions SET account_id = coalesce(account_id, $4),
            email = coalesce(email, $5), stripe_customer_id = coalesce(stripe_customer_id, $6),
            updated_at = clock_timestamp()
        WHERE seller_id = $1 AND mode = $2 AND id = $3
        """,
        tenant.seller_id,
        tenant.mode,
        subscription_id,
        account_id,
        email,
        stripe_customer_id,
    )


async def set_checkout_session(
    conn: asyncpg.Connection, tenant: Tenant, subscription_id: str, session_id: str
) -> None:
    """The Checkout Session that started the subscription (its success page asks by it);
    the first one named stays."""
    await conn.execute(
        "UPDATE subscriptions SET checkout_session_id = coalesce(checkout_session_id, $4)"
        " WHERE seller_id = $1 AND mode = $2 AND id = $3",
        tenant.seller_id,
        tenant.mode,
        subscription_id,
        session_id,
    )


async def by_checkout_session_of_any_tenant(
    conn: asyncpg.Connection | asyncpg.Pool, session_id: str
) -> asyncpg.Record | None:
    """The subscription a Checkout Session started, whichever seller's it is (Stripe's
    session ids are unique across accounts); oldest first, so the answer is fixed."""
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM subscriptions"  # noqa: S608 - constants
        " WHERE checkout_session_id = $1 ORDER BY created_at, seller_id, mode, id LIMIT 1",
        session_id,
    )


async def log_event(
    conn: asyncpg.Connection, tenant: Tenant, subscription_id: str, event: Logged
) -> bool:
    """Log the event once; False when it was logged already (a replay)."""
    status = await conn.execute(
        """
        INSERT INTO subscription_events (seller_id, mode, subscription_id, event_id, type,
                                         created, snapshot, previous)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb) ON CONFLICT DO NOTHING
        """,
        tenant.seller_id,
        tenant.mode,
        subscription_id,
        event.event_id,
        event.type,
        event.created,
        orjson.dumps(event.snapshot).decode(),
        orjson.dumps(event.previous).decode() if event.previous is not None else None,
    )
    return bool(status.endswith(" 1"))


async def logged(conn: asyncpg.Connection, tenant: Tenant, subscription_id: str) -> list[Logged]:
    rows = await conn.fetch(
        "SELECT event_id, type, created, snapshot, previous FROM subscription_events"
        " WHERE seller_id = $1 AND mode = $2 AND subscription_id = $3",
        tenant.seller_id,
        tenant.mode,
        subscription_id,
    )
    return [
        Logged(
            r["event_id"],
            r["type"],
            r["created"],
            orjson.loads(r["snapshot"]),
            orjson.loads(r["previous"]) if r["previous"] is not None else None,
        )
        for r in rows
    ]


async def save_state(
    conn: asyncpg.Connection, tenant: Tenant, subscription_id: str, values: dict[str, Any]
) -> None:
    """Write the folded state (`values`: column -> value)."""
    names = list(values)
    assignments = ", ".join(f'"{name}" = ${i + 4}' for i, name in enumerate(names))
    await conn.execute(
        f"UPDATE subscriptions SET {assignments}, updated_at = clock_timestamp()"  # noqa: S608 - our column names
        " WHERE seller_id = $1 AND mode = $2 AND id = $3",
        tenant.seller_id,
        tenant.mode,
        subscription_id,
        *values.values(),
    )


async def set_published(
    conn: asyncpg.Connection, tenant: Tenant, subscription_id: str, published: str, sequence: int
) -> None:
    await conn.execute(
        "UPDATE subscriptions SET published = $4::jsonb, sequence = $5"
        " WHERE seller_id = $1 AND mode = $2 AND id = $3",
        tenant.seller_id,
        tenant.mode,
        subscription_id,
        published,
        sequence,
    )


def at(timestamp: int | None) -> datetime | None:
    """Stripe's unix seconds as a timestamp."""
    return datetime.fromtimestamp(timestamp, UTC) if timestamp is not None else None
