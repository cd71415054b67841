"""Account verbs: find or create the account of a buyer, publishing its creation once;
remember the accounts auth makes (`auth.user.created.v1`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

import asyncpg

from tessera.billing.accounts import queries
from tessera.shared import inbox, outbox
from tessera.shared.accounts import account_id_for, normalize_email
from tessera.shared.events.auth import UserCreated
from tessera.shared.events.billing import AccountCreated
from tessera.shared.sellers import Tenant

log = logging.getLogger("tessera.billing.accounts")

CONSUMER = "billing.accounts"


@dataclass(frozen=True)
class AccountRef:
    id: UUID
    created: bool


async def find_or_create_account(
    conn: asyncpg.Connection, tenant: Tenant, email: str, source: Literal["purchase", "admin"]
) -> AccountRef:
    """Within the caller's transaction: the tenant's account for `email`, created (and
    `billing.account.created.v1` written to the outbox) if it did not exist. The same email
    at another seller, or in the other mode, is another account. A new account's id is the
    address's derived one, the id auth gives the same address (`account_id_for`)."""
    email = normalize_email(email)
    account_id = account_id_for(tenant, email)
    if await queries.insert_if_absent(conn, tenant, account_id, email, source):
        created = AccountCreated(
            account_id=account_id,
            email=email,
            source=source,
            seller_id=tenant.seller_id,
            mode=tenant.mode,
        )
        await outbox.add(conn, created)
        return AccountRef(account_id, created=True)
    existing = await queries.find_id_by_email(conn, tenant, email)
    assert existing is not None
    return AccountRef(existing, created=False)


async def remember_user_account(pool: asyncpg.Pool, event: UserCreated) -> bool:
    """Make the account of a user auth created (a seller's customer API, a sign-up), once,
    in the event's tenant, with auth's account id, so the seller's routes know the customer
    before its first purchase. Publishes nothing: auth and licensing have the event. An
    address that has an account already keeps it; one with another id (made before ids
    were derived) is logged. False when nothing was added."""
    async with inbox.first_delivery(pool, event, CONSUMER) as conn:
        if conn is None:
            return False
        tenant, email = event.tenant, normalize_email(event.email)
        if await queries.insert_if_absent(conn, tenant, event.account_id, email, "auth"):
            return True
        existing = await queries.find_id_by_email(conn, tenant, email)
        if existing != event.account_id:
            log.warning(
                "billing.account.conflict",
                extra={
                    "account_id": str(event.account_id),
                    "existing_account_id": str(existing),
                    "event_id": str(event.event_id),
                },
            )
        return False
