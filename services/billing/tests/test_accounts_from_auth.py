"""Billing learns the accounts auth makes (`auth.user.created.v1`: a seller's customer API,
a sign-up) with auth's account id: once however often the event comes, in any order with
billing's own account of the address, across a restart; an address billing already has
under another id keeps it (logged). Real Postgres, Redis and NATS."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import nats
import pytest

from tessera.billing.accounts.service import find_or_create_account, remember_user_account
from tessera.shared.accounts import account_id_for
from tessera.shared.events.auth import UserCreated
from tessera.shared.events.topology import AUTH
from tessera.shared.sellers import Tenant

pytestmark = pytest.mark.integration

TENANT = Tenant(uuid.UUID("00000000-0000-4000-8000-0000000000c3"), "test")


def user_created(email: str, account_id: uuid.UUID | None = None) -> UserCreated:
    return UserCreated(
        user_id=uuid.uuid4(),
        account_id=account_id or account_id_for(TENANT, email),
        email=email,
        seller_id=TENANT.seller_id,
        mode=TENANT.mode,
    )


async def publish(billing: Any, event: UserCreated, msg_id: str | None = None) -> None:
    """As auth's relay would, on auth's stream (`msg_id`: past the de-duplication)."""
    nc = await nats.connect(billing.nats_url)
    try:
        await nc.jetstream().publish(
            billing.namespace.subject(event.subject),
            event.to_json(),
            stream=billing.namespace.stream(AUTH),
            headers={"Nats-Msg-Id": msg_id or str(event.event_id)},
        )
    finally:
        await nc.close()


async def applied(billing: Any, eventually: Any, count: int) -> None:
    async def done() -> bool:
        n = await billing.value("SELECT count(*) FROM inbox WHERE consumer = 'billing.accounts'")
        return bool(n >= count)

    await eventually(done)


async def accounts_of(billing: Any, email: str) -> list[tuple[uuid.UUID, str]]:
    rows = await billing.fetch(
        "SELECT id, source FROM accounts WHERE seller_id = $1 AND mode = $2 AND email = $3",
        TENANT.seller_id, TENANT.mode, email,
    )  # fmt: skip
    return [(r["id"], r["source"]) for r in rows]


async def test_a_user_s_account_is_made_once_however_often_the_event_comes(
    billing: Any, billing_starter: Any, infra_settings: Any, eventually: Any
) -> None:
    event = user_created("Once@Example.com")
    await publish(billing, event)
    await publish(billing, event, msg_id="again-past-the-dedupe-window")
    await applied(billing, eventually, 1)
    first = await accounts_of(billing, "once@example.com")
    # A restart, then auth's relay publishing the same event once more.
    await billing.stop()
    restarted = await billing_starter(billing.database_url, infra_settings)
    try:
        await publish(restarted, event, msg_id="after-restart")
        await publish(restarted, user_created("other@example.com"))
        await applied(restarted, eventually, 2)
        after = await accounts_of(restarted, "once@example.com")
        published = await restarted.published("billing.account.created.v1")
        claims = await restarted.value(
            "SELECT count(*) FROM inbox WHERE event_id = $1", event.event_id
        )
    finally:
        await restarted.stop()
    assert first == after == [(event.account_id, "auth")]
    assert claims == 1
    # Auth and licensing have the user's event; billing announces only accounts it makes.
    assert published == []


async def test_a_purchase_and_a_created_customer_of_one_address_are_one_account_in_any_order(
    billing: Any, eventually: Any
) -> None:
    async def purchase(email: str) -> Any:
        async with billing.pool.acquire() as conn, conn.transaction():
            return await find_or_create_account(conn, TENANT, email, "purchase")

    # The purchase first: billing derives the id auth derived.
    bought = await purchase("First@example.com")
    await publish(billing, user_created("first@example.com"))
    # The customer first: the purchase finds the account auth made.
    await publish(billing, user_created("second@example.com"))
    await applied(billing, eventually, 2)
    later = await purchase("second@example.com")
    assert bought.created and bought.id == account_id_for(TENANT, "first@example.com")
    assert await accounts_of(billing, "first@example.com") == [(bought.id, "purchase")]
    assert not later.created and later.id == account_id_for(TENANT, "second@example.com")
    assert await accounts_of(billing, "second@example.com") == [(later.id, "auth")]


async def test_an_older_account_of_the_address_is_kept_with_a_warning(
    billing: Any, eventually: Any, logged: Any
) -> None:
    legacy = uuid.uuid4()  # made before account ids were derived
    await billing.pool.execute(
        "INSERT INTO accounts (id, email, source, seller_id, mode)"
        " VALUES ($1, 'old@example.com', 'purchase', $2, $3)",
        legacy, TENANT.seller_id, TENANT.mode,
    )  # fmt: skip
    with logged("tessera.billing.accounts") as records:
        await publish(billing, user_created("old@example.com"))
        await applied(billing, eventually, 1)
    assert await accounts_of(billing, "old@example.com") == [(legacy, "purchase")]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.WARNING, "billing.account.conflict")
    ]


async def test_a_purchase_racing_auth_s_event_makes_one_account_without_an_error(
    billing: Any,
) -> None:
    """Both inserts carry the one derived id: they collide on the key and on the address
    at once, and neither may fail for it."""

    async def purchase(email: str) -> Any:
        async with billing.pool.acquire() as conn, conn.transaction():
            return await find_or_create_account(conn, TENANT, email, "purchase")

    emails = [f"race{n}@example.com" for n in range(20)]
    outcomes = await asyncio.gather(
        *(purchase(e) for e in emails),
        *(remember_user_account(billing.pool, user_created(e)) for e in emails),
    )
    rows = await billing.fetch(
        "SELECT id, email FROM accounts WHERE seller_id = $1 AND mode = $2",
        TENANT.seller_id, TENANT.mode,
    )  # fmt: skip
    refs, remembered = outcomes[: len(emails)], outcomes[len(emails) :]
    assert sorted((r["email"], r["id"]) for r in rows) == sorted(
        (e, account_id_for(TENANT, e)) for e in emails
    )
    # each address made once: by the purchase (announced) or by auth's event, never both
    for ref, learnt in zip(refs, remembered, strict=True):
        assert ref.created != learnt
