"""Billing's seller API with secret keys: a key's seller reads one of its customers' orders,
in its key's mode; another seller's customer and a test key against live rows are 404 with
nothing changed; a publishable key is 403, no key 401; each key has its own rate budget.
Keys are real records on the APIKEYS stream, which the app's own KeyBook follows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import nats
import pytest

from tessera.devstack.seller_keys import publish_seller_keys
from tessera.shared.api_keys.format import Kind
from tessera.shared.sellers import HOME_SELLER_ID, Tenant

pytestmark = pytest.mark.integration

SELLER_A = UUID("00000000-0000-4000-8000-0000000000a1")
SELLER_B = UUID("00000000-0000-4000-8000-0000000000b2")
A_LIVE, A_TEST, B_LIVE = (
    Tenant(SELLER_A, "live"),
    Tenant(SELLER_A, "test"),
    Tenant(SELLER_B, "live"),
)
HOME = Tenant(HOME_SELLER_ID, "live")
TENANTS = (A_LIVE, A_TEST, B_LIVE, HOME)
KINDS: tuple[Kind, ...] = ("secret", "publishable")


@asynccontextmanager
async def keys_for(billing: Any) -> AsyncIterator[dict[tuple[Tenant, Kind], str]]:
    """A secret and a publishable key per tenant, published as auth would, once the app's
    own book holds them."""
    nc = await nats.connect(billing.nats_url)
    context = billing.app.state.context
    try:
        yield await publish_seller_keys(
            nc.jetstream(), billing.namespace, context.key_book, context.sellers,
            [(tenant, kind) for tenant in TENANTS for kind in KINDS],
        )  # fmt: skip
    finally:
        await nc.close()


def bearer(keys: dict[tuple[Tenant, Kind], str], tenant: Tenant, kind: Kind = "secret") -> Any:
    return {"authorization": f"Bearer {keys[(tenant, kind)]}"}


async def a_customer_with_an_order(billing: Any, tenant: Tenant) -> tuple[UUID, UUID]:
    account, order = uuid.uuid4(), uuid.uuid4()
    async with billing.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO accounts (id, email, source, seller_id, mode)"
            " VALUES ($1, 'c@example.com', 'admin', $2, $3)",
            account,
            tenant.seller_id,
            tenant.mode,
        )
        await conn.execute(
            """
            INSERT INTO orders (id, account_id, email, sku, quantity, amount_total, currency,
                                product, policy, seats, source, status, paid_at,
                                seller_id, mode)
            VALUES ($1, $2, 'c@example.com', 'tool', 1, 900, 'usd', 'tool', 'tool-year', 1,
                    'admin', 'paid', now(), $3, $4)
            """,
            order,
            account,
            tenant.seller_id,
            tenant.mode,
        )
    return account, order


async def snapshot(billing: Any) -> list[str]:
    rows = await billing.fetch(
        "SELECT t::text FROM accounts t UNION ALL SELECT o::text FROM orders o ORDER BY 1"
    )
    return [r[0] for r in rows]


async def test_a_sellers_customer_orders_and_nobody_elses(billing: Any) -> None:
    async with keys_for(billing) as keys:
        a_customer, a_order = await a_customer_with_an_order(billing, A_LIVE)
        b_customer, _ = await a_customer_with_an_order(billing, B_LIVE)
        mine = await billing.client.get(
            f"/v1/customers/{a_customer}/orders", headers=bearer(keys, A_LIVE)
        )
        assert mine.status_code == 200, mine.text
        assert [o["id"] for o in mine.json()] == [str(a_order)]

        before = await snapshot(billing)
        for tenant, customer in ((A_LIVE, b_customer), (A_TEST, a_customer), (B_LIVE, a_customer)):
            refused = await billing.client.get(
                f"/v1/customers/{customer}/orders", headers=bearer(keys, tenant)
            )
            assert refused.status_code == 404, (tenant, refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
        assert await snapshot(billing) == before


async def test_publishable_keys_are_forbidden_and_no_key_is_401(billing: Any) -> None:
    async with keys_for(billing) as keys:
        customer, _ = await a_customer_with_an_order(billing, A_LIVE)
        for headers, status in (
            (bearer(keys, A_LIVE, "publishable"), 403),
            ({}, 401),
            ({"authorization": "Bearer sk_live_notakey"}, 401),
        ):
            answer = await billing.client.get(f"/v1/customers/{customer}/orders", headers=headers)
            assert answer.status_code == status, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
        bad = await billing.client.get("/v1/customers/nope/orders", headers=bearer(keys, A_LIVE))
        assert bad.status_code == 422


async def test_each_key_has_its_own_rate_budget(
    database_url: str, infra_settings: Any, billing_starter: Any
) -> None:
    billing = await billing_starter(database_url, infra_settings, seller_key_rate_limit="3/minute")
    try:
        async with keys_for(billing) as keys:
            some = uuid.uuid4()

            async def read(tenant: Tenant) -> int:
                answer = await billing.client.get(
                    f"/v1/customers/{some}/orders", headers=bearer(keys, tenant)
                )
                return int(answer.status_code)

            assert [await read(A_LIVE) for _ in range(4)] == [404, 404, 404, 429]
            assert await read(B_LIVE) == 404
            assert await read(A_TEST) == 404
    finally:
        await billing.stop()


async def test_checkout_with_a_key_is_the_keys_seller_or_a_clear_refusal(billing: Any) -> None:
    """No key: the home seller's checkout, as before keys; the home seller's live key: the
    same; another seller's live key: 409 not connected; a test key: 409 until Connect; a
    header that is no valid key: 401. A refusal writes nothing."""
    body = {"sku": "chartgpt-lifetime"}
    async with keys_for(billing) as keys:
        no_key: dict[str, str] = {}
        for headers in (no_key, bearer(keys, HOME, "publishable"), bearer(keys, HOME)):
            started = await billing.client.post("/v1/checkout/sessions", json=body, headers=headers)
            assert started.status_code == 201, started.text
        sessions = await billing.value("SELECT count(*) FROM test_checkout_sessions")
        assert sessions == 3
        for headers, status, slug in (
            (bearer(keys, A_LIVE, "publishable"), 409, "not-connected"),
            (bearer(keys, B_LIVE), 409, "not-connected"),
            (bearer(keys, A_TEST, "publishable"), 409, "test-checkout-unavailable"),
            ({"authorization": "Bearer pk_live_notakey"}, 401, None),
        ):
            refused = await billing.client.post("/v1/checkout/sessions", json=body, headers=headers)
            assert refused.status_code == status, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            if slug:
                assert refused.json()["type"].endswith(slug)
        assert await billing.value("SELECT count(*) FROM test_checkout_sessions") == sessions
