"""Customer verbs: remember the accounts billing and auth make, once each."""

from __future__ import annotations

import logging

import asyncpg

from tessera.licensing.customers import queries
from tessera.shared import inbox
from tessera.shared.events.auth import UserCreated
from tessera.shared.events.billing import AccountCreated

log = logging.getLogger("tessera.licensing.customers")

CONSUMER = "licensing.customers"


async def register_customer(pool: asyncpg.Pool, event: AccountCreated) -> bool:
    """Remember the account once, in the event's tenant. Returns False when the event was
    already applied."""
    async with inbox.first_delivery(pool, event, CONSUMER) as conn:
        if conn is None:
            return False
        await queries.remember(conn, event.tenant, event.account_id, event.email)
        return True


async def register_user_account(pool: asyncpg.Pool, event: UserCreated) -> bool:
    """Remember the account of a user auth created (a seller's customer API, a sign-up),
    once, in the event's tenant, so a grant for the customer finds it. An address the
    tenant knows under another account id (made before ids were derived) keeps that one,
    logged. False when nothing was added."""
    async with inbox.first_delivery(pool, event, CONSUMER) as conn:
        if conn is None:
            return False
        tenant = event.tenant
        known = await queries.accounts_of_email(conn, tenant, event.email)
        if known and event.account_id not in known:
            log.warning(
                "licensing.customer.account_conflict",
                extra={
                    "account_id": str(event.account_id),
                    "existing_account_ids": [str(k) for k in known],
                    "event_id": str(event.event_id),
                },
            )
            return False
        return await queries.remember(conn, tenant, event.account_id, event.email)
