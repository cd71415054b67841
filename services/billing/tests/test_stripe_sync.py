"""The catalog's Stripe sync under concurrency, against the Stripe stand-in with its answers
held or slowed (`StandIn.gate`): two replicas on one slow batch call Stripe once per object
(a row whose lease ran out before its turn is left to the replica that claimed it since);
a seller who connects another account while a call is in flight gets the object on the new
account, and the id made on the old one is never recorded."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import asyncpg
import pytest
from starlette.requests import Request
from test_catalog import synced  # type: ignore[import-not-found]
from test_connect import (  # type: ignore[import-not-found]
    A_TEST,
    SELLER_A,
    connect,
    connect_stack,
    secret_keys,
    until,
)

from tessera.billing.catalog import service as catalog
from tessera.billing.catalog.schemas import ProductIn
from tessera.billing.stripe_sync.worker import CatalogSync
from tessera.devstack.stripe_standin.testing import API_KEY, running_standin
from tessera.shared.sellers import HOME_LIVE

pytestmark = pytest.mark.integration

CALL_SECONDS = 0.15
LEASE_SECONDS = 0.4


def writes(request: Request) -> bool:
    return request.method == "POST" and request.url.path.startswith(("/v1/products", "/v1/prices"))


async def test_two_replicas_on_one_slow_batch_call_stripe_once_per_object(
    database_url: str, infra_settings: Any, billing_starter: Any
) -> None:
    calls: Counter[tuple[str, str]] = Counter()

    async def slow(request: Request) -> None:
        if writes(request):
            calls[(request.url.path, request.headers.get("idempotency-key", ""))] += 1
            await asyncio.sleep(CALL_SECONDS)

    async with running_standin() as standin:
        # Billing serves the API and seeds the home catalog; its own worker is off, so the
        # two replicas below are the only ones calling.
        billing = await billing_starter(
            database_url, infra_settings, stripe_secret_key=API_KEY, stripe_api_base=standin.url,
            run_workers=False,
        )  # fmt: skip
        accounts = billing.app.state.context.accounts
        pools: list[asyncpg.Pool] = []
        tasks: list[asyncio.Task[None]] = []
        try:
            for n in range(10):
                await catalog.create_product(
                    billing.pool, accounts, HOME_LIVE, ProductIn(code=f"p{n}", name=f"P {n}")
                )
            rows = await billing.value("SELECT count(*) FROM stripe_sync WHERE state = 'pending'")
            # The batch takes several leases' time: its later rows' leases run out first.
            assert rows * CALL_SECONDS > 3 * LEASE_SECONDS
            standin.standin.gate = slow
            for _ in range(2):
                pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
                pools.append(pool)
                replica = CatalogSync(
                    pool, accounts, lease_seconds=LEASE_SECONDS, poll_interval=0.05,
                    retry_seconds=0.1,
                )  # fmt: skip
                tasks.append(asyncio.create_task(replica.run()))
            await synced(billing, timeout=30)
            products = (await standin.client().v1.products.list_async(params={"limit": 100})).data
            recorded = await billing.fetch("SELECT code, stripe_product_id FROM products")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for pool in pools:
                await pool.close()
            await billing.stop()
    twice = {call: n for call, n in calls.items() if n > 1}
    assert twice == {}, f"called Stripe more than once for one object: {twice}"
    creations = [path for path, _ in calls if path == "/v1/products"]
    assert len(creations) == 12 == len(products)  # ten new, chartgpt and platform
    assert {r["stripe_product_id"] for r in recorded} == {p.id for p in products}


async def test_a_reconnect_during_a_call_puts_the_object_on_the_new_account(
    database_url: str, infra_settings: Any, billing_starter: Any
) -> None:
    held = asyncio.Event()
    release = asyncio.Event()
    first_account: list[str] = []

    created_on: list[str | None] = []

    async def hold_the_first_accounts_answer(request: Request) -> None:
        """Stripe has made the object; its answer is held."""
        if request.method == "POST" and request.url.path == "/v1/products":
            created_on.append(request.headers.get("stripe-account"))
        if writes(request) and request.headers.get("stripe-account") in first_account:
            held.set()
            await release.wait()

    stack = connect_stack(database_url, infra_settings, billing_starter)
    async with stack as (standin, billing), secret_keys(billing, (A_TEST,)) as keys:
        a = keys[A_TEST]
        first = await connect(billing, standin, a)
        first_account.append(first)
        standin.standin.answered = hold_the_first_accounts_answer
        made = await billing.client.post(
            "/v1/products", json={"code": "gadget", "name": "G"}, headers=a
        )
        assert made.status_code == 201, made.text
        await asyncio.wait_for(held.wait(), 15)
        # Stripe has made the product on the first account; before its answer arrives, the
        # seller moves to another.
        assert (await billing.client.delete("/v1/stripe/connection", headers=a)).status_code == 204
        second = await connect(billing, standin, a)
        assert second != first
        release.set()
        await until(
            billing,
            "SELECT count(*) FROM stripe_sync WHERE seller_id = $1 AND state = 'synced'",
            SELLER_A,
            want=1,
        )
        stripe = standin.client()
        # (The first account is disconnected: the platform can no longer list its objects.)
        on_second = (await stripe.v1.products.list_async(options={"stripe_account": second})).data
        recorded = await billing.value(
            "SELECT stripe_product_id FROM products WHERE seller_id = $1 AND code = 'gadget'",
            SELLER_A,
        )
    # Stripe did make it on the first account (the call was in flight), but what the
    # catalog records is the second account's product, made anew there.
    assert created_on == [first, second]
    assert [p.name for p in on_second] == ["G"]
    assert recorded == on_second[0].id
