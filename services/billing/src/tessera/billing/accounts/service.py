"""Account verbs: find or create the account of a buyer, publishing its creation once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from uuid import UUID

import asyncpg

from tessera.billing.accounts import queries
from tessera.shared import outbox
from tessera.shared.events.billing import AccountCreated
from tessera.shared.events.envelope import new_event_id
from tessera.shared.sellers import Tenant


def normalise_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class AccountRef:
    id: UUID
    created: bool


async def find_or_create_account(
    conn: asyncpg.Connection, tenant: Tenant, email: str, source: Literal["purchase", "admin"]
) -> AccountRef:
    """Within the caller's transaction: the tenant's account for `email`, created (and
    `billing.account.created.v1` written to the outbox) if it did not exist. The same email
    at another seller, or in the other mode, is another account."""
    email = normalise_email(email)
    account_id = new_event_id()
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
