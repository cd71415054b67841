"""Licensing learns the accounts auth makes (`auth.user.created.v1`: a seller's customer
API, a sign-up): once however often the event comes, across a restart, before or after
billing's `billing.account.created.v1` of the same account; an address the tenant knows
under another account id keeps it (logged). Real Postgres, Redis and NATS."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from licensing_factories import Harness  # type: ignore[import-not-found]

from tessera.shared.accounts import account_id_for
from tessera.shared.events.auth import UserCreated
from tessera.shared.events.billing import AccountCreated
from tessera.shared.sellers import Tenant

pytestmark = pytest.mark.integration

TENANT = Tenant(uuid.UUID("00000000-0000-4000-8000-0000000000c4"), "live")


def user_created(email: str) -> UserCreated:
    return UserCreated(
        user_id=uuid.uuid4(), account_id=account_id_for(TENANT, email), email=email,
        seller_id=TENANT.seller_id, mode=TENANT.mode,
    )  # fmt: skip


def account_created(email: str, account_id: uuid.UUID | None = None) -> AccountCreated:
    return AccountCreated(
        account_id=account_id or account_id_for(TENANT, email), email=email,
        seller_id=TENANT.seller_id, mode=TENANT.mode,
    )  # fmt: skip


async def applied(h: Harness, count: int) -> None:
    async def done() -> bool:
        n = await h.fetchval("SELECT count(*) FROM inbox WHERE consumer = 'licensing.customers'")
        return bool(n >= count)

    await h.until(done)


async def customers(h: Harness) -> list[tuple[uuid.UUID, str]]:
    rows = await h.fetch(
        "SELECT account_id, email FROM customers WHERE seller_id = $1 AND mode = $2"
        " ORDER BY email, account_id",
        TENANT.seller_id, TENANT.mode,
    )  # fmt: skip
    return [(r["account_id"], r["email"]) for r in rows]


async def test_a_user_s_account_is_known_once_however_often_the_event_comes(
    start_licensing: Any,
) -> None:
    event = user_created("once@example.com")
    async with start_licensing() as h:
        await h.publish(event)
        await h.publish(event, msg_id="again-past-the-dedupe-window")
        await applied(h, 1)
        first = await customers(h)
    # A restart, then auth's relay publishing the same event once more.
    async with start_licensing() as h:
        await h.publish(event, msg_id="after-restart")
        await h.publish(user_created("other@example.com"))
        await applied(h, 2)
        after = await customers(h)
        claims = await h.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", event.event_id)
    assert first == [(event.account_id, "once@example.com")]
    assert after == [*first, (account_id_for(TENANT, "other@example.com"), "other@example.com")]
    assert claims == 1


async def test_billing_s_and_auth_s_events_of_one_account_in_either_order(
    harness: Harness,
) -> None:
    # Two consumers: each event is applied before the next is published, so the order holds.
    in_order = [
        account_created("billing-first@example.com"), user_created("billing-first@example.com"),
        user_created("auth-first@example.com"), account_created("auth-first@example.com"),
    ]  # fmt: skip
    for n, event in enumerate(in_order, 1):
        await harness.publish(event)
        await applied(harness, n)
    assert await customers(harness) == [
        (account_id_for(TENANT, "auth-first@example.com"), "auth-first@example.com"),
        (account_id_for(TENANT, "billing-first@example.com"), "billing-first@example.com"),
    ]


async def test_an_older_account_of_the_address_is_kept_with_a_warning(
    harness: Harness, logged: Any
) -> None:
    legacy = uuid.uuid4()  # made by billing before account ids were derived
    await harness.publish(account_created("old@example.com", legacy))
    await applied(harness, 1)
    with logged("tessera.licensing.customers") as records:
        await harness.publish(user_created("old@example.com"))
        await applied(harness, 2)
    assert await customers(harness) == [(legacy, "old@example.com")]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.WARNING, "licensing.customer.account_conflict")
    ]
