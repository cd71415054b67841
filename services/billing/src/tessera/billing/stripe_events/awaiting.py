"""A connected account's events that come before its connection: held, not lost.

Stripe sends an account's events the moment the account authorizes the platform, before
its seller has confirmed the connection (connect/service.py), so an event of an account no
seller has connected is recorded `held` (hold_key `awaiting-connection`, under the home
seller in the event's mode, with the reason) rather than ignored. When a connection of that
account and mode commits, its transaction hands the waiting events to the seller's tenant
as `received`, and the applier applies them as any other (each once: the hand-over moves
each row out of `held` once, and every effect is keyed by the Stripe event id). Durable:
the events and the hand-over are rows, so a restart on either side of it loses nothing.

The race between an event recorded while the connection commits is closed by the
account's lock (`connections.lock_account`): the connection takes it before it looks for
waiting events, and the ingress, after recording an event as waiting, takes it and looks
for a connection; whichever comes second sees the other's commit. The applier also sweeps
now and then (`sweep`): it hands over what a crash between those two steps left waiting,
and gives up on events no seller connected within `EXPIRY` (Stripe's retry window), which
become `ignored` with the reason."""

from __future__ import annotations

import logging
from datetime import timedelta

import asyncpg

from tessera.billing.stripe import connections
from tessera.billing.stripe.connections import Connection
from tessera.billing.stripe_events import queries
from tessera.shared.sellers import HOME_SELLER_ID, Mode, Tenant

log = logging.getLogger("tessera.billing.webhooks")

# Stripe retries a delivery for up to three days: an account no seller connects by then is
# not coming (and nothing older would be retried to us anyway).
EXPIRY = timedelta(days=3)


def waiting_tenant(mode: Mode) -> Tenant:
    """Whose rows the waiting events are until a connection claims them: the home seller's in
    the event's mode, where every event no tenant owns is recorded (webhooks/routing.py)."""
    return Tenant(HOME_SELLER_ID, mode)


async def release(conn: asyncpg.Connection, connection: Connection) -> int:
    """In the transaction that commits `connection`, after its row is written: its
    account's waiting events become its tenant's, to be applied. How many."""
    tenant = connection.tenant
    await connections.lock_account(conn, connection.account_id, tenant.mode)
    released, ignored = await queries.release_awaiting(
        conn, waiting_tenant(tenant.mode), connection.account_id, tenant, connection.authorized_at
    )
    if released:
        await queries.wake_applier(conn)
    if released or ignored:
        log.info(
            "billing.webhook.awaiting_released",
            extra={"account": connection.account_id, "released": released, "ignored": ignored},
        )
    return released


async def recheck(pool: asyncpg.Pool, account_id: str, mode: Mode) -> int:
    """After an event of the account was recorded as waiting: a connection that committed
    since the ingress looked takes it now."""
    async with pool.acquire() as conn, conn.transaction():
        await connections.lock_account(conn, account_id, mode)
        connection = await connections.of_account(conn, account_id, mode)
        return 0 if connection is None else await release(conn, connection)


async def sweep(pool: asyncpg.Pool) -> None:
    """Hand over what waits for an account connected now; give up on what waited too long."""
    async with pool.acquire() as conn:
        waiting = await queries.accounts_awaiting(conn)
    for account_id, mode in waiting:
        await recheck(pool, account_id, mode)
    async with pool.acquire() as conn:
        expired = await queries.expire_awaiting(conn, EXPIRY)
    if expired:
        log.warning("billing.webhook.awaiting_expired", extra={"events": expired})
