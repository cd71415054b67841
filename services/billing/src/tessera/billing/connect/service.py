"""Connect verbs: start a connection (Stripe's OAuth page for Standard accounts), take the
authorization at the callback, confirm it (the seller), read it, end it (the seller, or
Stripe's `account.application.deauthorized`).

The `state` sent through Stripe is a random secret stored (hashed) with the tenant that
started it, used once and for 15 minutes: the callback's tenant comes from it alone, never
from anything else in the callback's URL. But the state proves only which link was used,
not who used it: whoever completes Stripe's page with the link (a link that leaked, or a
seller phished into opening an attacker's session) authorizes *their* account. So the
callback connects nothing: it stores the authorization as pending, and only the seller's
own credential (`confirm`, secret key, naming the pending id) makes it the connection
(docs/billing.md, "Connect", says why this and not a browser cookie).

A connection and the catalog rows waiting for it change in one transaction, under the
tenant's connection lock (`stripe/connections.py`): on connect the tenant's
`awaiting_connect` rows become `pending` (the sync worker pushes them to the account) and
the account's waiting events are released (stripe_events/awaiting.py), on disconnect its
`pending` and `failed` rows wait again."""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import stripe

from tessera.billing.audit import queries as audit
from tessera.billing.catalog import queries as catalog
from tessera.billing.catalog import sync_queries as sync
from tessera.billing.catalog.schemas import SyncStateName
from tessera.billing.connect import queries
from tessera.billing.connect.queries import Pending
from tessera.billing.connect.schemas import ConnectStarted, PendingConnection, StripeConnection
from tessera.billing.settings import BillingSettings
from tessera.billing.stripe import connections
from tessera.billing.stripe.accounts import Accounts
from tessera.billing.stripe.gateway import StripeUnavailable
from tessera.billing.stripe_events import awaiting
from tessera.shared.http.problems import NotFound, Problem
from tessera.shared.sellers import Tenant

log = logging.getLogger("tessera.billing.connect")

STATE_TTL = timedelta(minutes=15)
# Long enough for the link's finisher to reach whoever holds the seller's secret key.
PENDING_TTL = timedelta(hours=24)
CALLBACK_PATH = "/v1/stripe/connect/callback"
PENDING_PATH = "/v1/stripe/connect/pending"


class ConnectUnavailable(Problem):
    status = 409
    slug = "connect-unavailable"
    title = "Stripe Connect is not available for this mode"


class PlatformAccount(Problem):
    status = 409
    slug = "platform-account"
    title = "This tenant is served by the platform's own Stripe account"


class AlreadyConnected(Problem):
    status = 409
    slug = "already-connected"
    title = "A Stripe account is connected already"


class AccountInUse(Problem):
    status = 409
    slug = "account-in-use"
    title = "This Stripe account is connected to another seller"


class NoConnection(NotFound):
    slug = "no-connection"
    title = "No Stripe account is connected"


class NoPendingConnection(NotFound):
    slug = "no-pending-connection"
    title = "No such authorization waits for confirmation"


class ConnectStateInvalid(Problem):
    status = 400
    slug = "connect-state-invalid"
    title = "This connection link is unknown, used or expired"


class ConnectDenied(Problem):
    status = 400
    slug = "connect-denied"
    title = "The Stripe account was not connected"


class ConnectCodeInvalid(Problem):
    status = 400
    slug = "connect-code-invalid"
    title = "Stripe refused the authorization code"


def _client(accounts: Accounts, settings: BillingSettings, tenant: Tenant) -> stripe.StripeClient:
    """The platform's client that connects a `tenant.mode` account, or why there is none."""
    if tenant == accounts.served:
        raise PlatformAccount("The home seller's live tenant sells on the platform's account.")
    client = accounts.client_for(tenant.mode)
    if client is None or settings.stripe_connect_client_id is None:
        raise ConnectUnavailable(
            f"This platform has no Connect client id or no {tenant.mode}-mode Stripe key."
        )
    return client


def callback_url(settings: BillingSettings) -> str:
    """The redirect URL registered in Stripe's Connect settings."""
    return str(settings.public_url).rstrip("/") + CALLBACK_PATH


async def start(
    pool: asyncpg.Pool, accounts: Accounts, settings: BillingSettings, tenant: Tenant
) -> ConnectStarted:
    client = _client(accounts, settings, tenant)
    state = secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        if await connections.connected_account(conn, tenant) is not None:
            raise AlreadyConnected("Disconnect the connected account first.")
        await queries.add_state(conn, tenant, state, STATE_TTL)
    url = client.oauth.authorize_url(
        {
            "response_type": "code",
            "scope": "read_write",
            "redirect_uri": callback_url(settings),
            "state": state,
            # Our sellers usually have a Stripe account already: Stripe's sign-in first.
            "stripe_landing": "login",
        }
    )
    return ConnectStarted(url=url, expires_at=datetime.now(UTC) + STATE_TTL)


async def finish(
    pool: asyncpg.Pool,
    accounts: Accounts,
    settings: BillingSettings,
    state: str,
    code: str | None,
    error: str | None,
) -> PendingConnection:
    """The callback: the state names the tenant (once); the code is exchanged for the
    account's id (the code is single-use and short-lived, so now), which waits for the
    tenant's confirmation (`confirm`). Not connected here: whoever holds the link can
    complete Stripe's page, with any Stripe account."""
    async with pool.acquire() as conn:
        tenant = await queries.take_state(conn, state)
    if tenant is None:
        raise ConnectStateInvalid("Start the connection again from the API.")
    if error is not None or not code:
        raise ConnectDenied(f"Stripe answered {error or 'no code'}; nothing was connected.")
    client = _client(accounts, settings, tenant)
    try:
        token = await asyncio.to_thread(
            client.oauth.token, {"grant_type": "authorization_code", "code": code}
        )
    except stripe.oauth_error.OAuthError as refused:
        raise ConnectCodeInvalid(f"Stripe answered {refused.code}.") from None
    except stripe.StripeError as failure:
        raise StripeUnavailable("Stripe did not answer; start the connection again.") from failure
    account_id, livemode = token.stripe_user_id, bool(token.livemode)
    if account_id is None or livemode != (tenant.mode == "live"):
        # Cannot happen: the key of the tenant's mode made the exchange.
        raise StripeUnavailable("Stripe's answer does not fit this mode.")
    async with pool.acquire() as conn:
        pending = await queries.add_pending(
            conn, tenant, account_id, livemode, token.scope, PENDING_TTL
        )
    return PendingConnection.of(pending, confirm_url(settings, pending))


async def pending(
    pool: asyncpg.Pool, settings: BillingSettings, tenant: Tenant
) -> list[PendingConnection]:
    """The authorizations waiting for the tenant's confirmation."""
    async with pool.acquire() as conn:
        waiting = await queries.list_pending(conn, tenant)
    return [PendingConnection.of(p, confirm_url(settings, p)) for p in waiting]


async def confirm(pool: asyncpg.Pool, tenant: Tenant, pending_id: UUID) -> StripeConnection:
    """The seller (its secret key) makes a pending authorization its connection: then, and
    only then, the account is the tenant's, its catalog goes there and its waiting events
    are applied (stripe_events/awaiting.py), all in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        await connections.lock_tenant(conn, tenant, shared=False)
        chosen = await queries.take_pending(conn, tenant, pending_id)
        if chosen is None:
            raise NoPendingConnection("Nothing waits for confirmation under this id.")
        before = await connections.find(conn, tenant)
        if before is not None and before.status == "connected":
            if before.account_id == chosen.account_id:
                return StripeConnection.of(before)  # the same account, confirmed twice
            raise AlreadyConnected("Disconnect the connected account first.")
        try:
            async with conn.transaction():
                connection = await connections.connect(
                    conn, tenant, chosen.account_id, chosen.livemode, chosen.scope,
                    chosen.authorized_at,
                )  # fmt: skip
        except asyncpg.UniqueViolationError:
            raise AccountInUse(
                "This Stripe account is connected to another seller; use another account."
            ) from None
        moved = before is not None and before.account_id != chosen.account_id
        await _queue_connected(conn, tenant, moved)
        await awaiting.release(conn, connection)
        await audit.record(conn, tenant, "seller", "stripe.connected", chosen.account_id)
    return StripeConnection.of(connection)


def confirm_url(settings: BillingSettings, pending: Pending) -> str:
    return f"{str(settings.public_url).rstrip('/')}{PENDING_PATH}/{pending.id}/confirm"


async def _queue_connected(conn: asyncpg.Connection, tenant: Tenant, moved: bool) -> None:
    """What waited for an account goes to it; on another account than before, everything
    is made there anew (the old account's ids mean nothing in the new one)."""
    waiting: tuple[SyncStateName, ...] = (
        ("awaiting_connect", "failed", "synced") if moved else ("awaiting_connect",)
    )
    if moved:
        await catalog.forget_stripe_ids(conn, tenant)
    for state in waiting:
        await sync.requeue(conn, tenant, state, "pending")
    await conn.execute("SELECT pg_notify('billing_stripe_sync', '')")


async def _queue_disconnected(conn: asyncpg.Connection, tenant: Tenant) -> None:
    for state in ("pending", "failed"):
        await sync.requeue(conn, tenant, state, "awaiting_connect")


async def connection(pool: asyncpg.Pool, tenant: Tenant) -> StripeConnection:
    async with pool.acquire() as conn:
        return StripeConnection.of(await connections.find(conn, tenant))


async def disconnect(
    pool: asyncpg.Pool, accounts: Accounts, settings: BillingSettings, tenant: Tenant
) -> None:
    """Deauthorize the platform on the seller's account (Stripe then sends
    `account.application.deauthorized`, which finds nothing left to do), then record it."""
    async with pool.acquire() as conn:
        account_id = await connections.connected_account(conn, tenant)
    if account_id is None:
        raise NoConnection("No Stripe account is connected.")
    client = _client(accounts, settings, tenant)
    try:
        await asyncio.to_thread(client.oauth.deauthorize, {"stripe_user_id": account_id})
    except stripe.oauth_error.OAuthError as refused:
        # Already removed on Stripe's side (the seller did it in the Dashboard, and its
        # event has not arrived yet): nothing more to undo there.
        if "not connected" not in str(refused.user_message or refused):
            raise StripeUnavailable("Stripe refused the disconnection.") from refused
        log.warning("billing.connect.already_deauthorized", extra={"account": account_id})
    except stripe.StripeError as failure:
        raise StripeUnavailable("Stripe did not answer; try again.") from failure
    async with pool.acquire() as conn, conn.transaction():
        await _ended(conn, tenant, account_id, "seller", None)


async def deauthorized(
    conn: asyncpg.Connection, tenant: Tenant, account_id: str, sent_at: datetime | None
) -> bool:
    """Stripe's `account.application.deauthorized` for the tenant's account: the seller
    removed the platform. Only a connection made before the event was sent ends (a late
    event must not end a newer connection of the same account); False if none did."""
    return await _ended(conn, tenant, account_id, "stripe", sent_at)


async def _ended(
    conn: asyncpg.Connection,
    tenant: Tenant,
    account_id: str,
    by: connections.DisconnectedBy,
    sent_at: datetime | None,
) -> bool:
    await connections.lock_tenant(conn, tenant, shared=False)
    if not await connections.disconnect(conn, tenant, account_id, by, sent_at):
        return False
    await _queue_disconnected(conn, tenant)
    await audit.record(conn, tenant, by, "stripe.disconnected", account_id)
    return True
