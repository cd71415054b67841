"""What every endpoint shares beyond the resources: concurrent idempotent requests, the
body bound and rate limit, paging backwards, endpoints registered through the API, and
the `tessera-dev stripe-standin` command."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import pytest
import stripe
from starlette.applications import Starlette

from tessera.devstack.infra import free_port, wait_for_port
from tessera.devstack.stripe_standin.api import Call, Endpoint
from tessera.devstack.stripe_standin.app import StandIn
from tessera.devstack.stripe_standin.settings import StandInSettings
from tessera.devstack.stripe_standin.store import PLATFORM
from tessera.devstack.stripe_standin.testing import (
    API_KEY,
    StandInServer,
    recurring_price,
    running_standin,
)
from tessera.devstack.stripe_standin.wire import Obj


async def test_concurrent_requests_with_one_idempotency_key_make_one_object(
    client: stripe.StripeClient,
) -> None:
    made = await asyncio.gather(
        *(
            client.v1.customers.create_async(
                {"email": "same@example.com"}, options={"idempotency_key": "together"}
            )
            for _ in range(10)
        )
    )
    assert len({c.id for c in made}) == 1
    assert len((await client.v1.customers.list_async()).data) == 1


async def test_a_body_over_the_bound_is_a_413_and_too_many_requests_a_429() -> None:
    async with running_standin(max_body_bytes=1024, rate_limit=5) as server:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}
        ) as raw:
            big = await raw.post("/v1/products", data={"name": "x" * 2000})
            assert big.status_code == 413
            assert big.json()["error"]["type"] == "invalid_request_error"
        client = server.client()
        with pytest.raises(stripe.RateLimitError) as limited:
            for _ in range(10):
                await client.v1.products.list_async()
        assert limited.value.http_status == 429


async def test_ending_before_pages_towards_the_newest(client: stripe.StripeClient) -> None:
    made = [await client.v1.customers.create_async({"name": str(n)}) for n in range(5)]
    newer = await client.v1.customers.list_async({"ending_before": made[1].id, "limit": 2})
    assert [c.id for c in newer.data] == [made[3].id, made[2].id]
    assert newer.has_more is True
    newest = await client.v1.customers.list_async({"ending_before": made[3].id, "limit": 2})
    assert [c.id for c in newest.data] == [made[4].id]
    assert newest.has_more is False


async def test_webhook_endpoints_registered_through_the_api_get_the_events_they_enable(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    endpoint = await client.v1.webhook_endpoints.create_async(
        {"url": server.extra_url, "enabled_events": ["customer.created"]}
    )
    assert endpoint.id.startswith("we_") and endpoint.secret is not None
    assert endpoint.secret.startswith("whsec_") and endpoint.status == "enabled"
    server.extra.secret = endpoint.secret
    assert "secret" not in (await client.v1.webhook_endpoints.retrieve_async(endpoint.id))
    await client.v1.products.create_async({"name": "Not enabled"})
    await client.v1.customers.create_async({"email": "one@example.com"})
    await server.delivered()
    assert server.extra.types() == ["customer.created"]

    await client.v1.webhook_endpoints.update_async(endpoint.id, {"disabled": True})
    await client.v1.customers.create_async({"email": "two@example.com"})
    await client.v1.webhook_endpoints.delete_async(endpoint.id)
    await client.v1.customers.create_async({"email": "three@example.com"})
    await server.delivered()
    assert len(server.extra.deliveries) == 1
    assert server.platform.types().count("customer.created") == 3
    assert (await client.v1.webhook_endpoints.list_async()).data == []


async def test_the_dev_command_serves_the_stand_in() -> None:
    port = free_port()
    command = [
        sys.executable, "-c", "from tessera.devstack.cli import app; app()",
        "stripe-standin", "--port", str(port),
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.DEVNULL)
    try:
        await asyncio.to_thread(wait_for_port, "127.0.0.1", port, "the stand-in", 30)
        client = stripe.StripeClient(
            API_KEY,
            base_addresses={"api": f"http://127.0.0.1:{port}"},
            http_client=stripe.HTTPXClient(),
        )
        product = await client.v1.products.create_async({"name": "Served"})
        assert (await client.v1.products.retrieve_async(product.id)).name == "Served"
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


async def test_a_request_that_fails_changes_nothing(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        # the product is made first, then the missing currency fails the request
        await client.v1.prices.create_async(
            {"product_data": {"name": "Half made"}, "unit_amount": 100}  # type: ignore[typeddict-item]
        )
    assert (await client.v1.products.list_async()).data == []
    assert (await client.v1.events.list_async()).data == []

    price = await recurring_price(client)
    customer = await client.v1.customers.create_async({})
    subscription = await client.v1.subscriptions.create_async(
        {"customer": customer.id, "items": [{"price": price}]}
    )
    item = subscription["items"]["data"][0]
    other = await recurring_price(client, 2900)
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.subscriptions.update_async(
            subscription.id,
            {"items": [{"id": item["id"], "price": other}], "proration_behavior": "sometimes"},
        )
    unchanged = await client.v1.subscriptions.retrieve_async(subscription.id)
    assert unchanged["items"]["data"][0]["price"]["id"] == price
    await server.delivered()
    assert "customer.subscription.updated" in server.platform.types()  # incomplete -> active
    assert server.platform.types().count("customer.subscription.updated") == 1
    event = (await client.v1.events.list_async({"limit": 1})).data[0]
    assert event.pending_webhooks == 0


async def test_lists_filter_by_created(client: stripe.StripeClient) -> None:
    early = await client.v1.test_helpers.test_clocks.create_async({"frozen_time": 1_700_000_000})
    late = await client.v1.test_helpers.test_clocks.create_async({"frozen_time": 1_800_000_000})
    first = await client.v1.customers.create_async({"test_clock": early.id})
    second = await client.v1.customers.create_async({"test_clock": late.id})
    before = await client.v1.customers.list_async({"created": {"lt": 1_750_000_000}})
    assert [c.id for c in before.data] == [first.id]
    since = await client.v1.customers.list_async({"created": {"gte": 1_800_000_000}})
    assert [c.id for c in since.data] == [second.id]
    exact = await client.v1.customers.list_async({"created": 1_700_000_000})
    assert [c.id for c in exact.data] == [first.id]


async def test_a_fault_of_the_stand_in_is_a_500_api_error_that_changes_nothing() -> None:
    def half_done(call: Call) -> Obj:
        call.store.add(PLATFORM, {"id": "prod_half", "object": "product", "created": 0})
        raise RuntimeError("a bug")

    standin = StandIn(StandInSettings())
    app = Starlette(routes=[standin.route(Endpoint("POST", "/v1/faulty", half_done))])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://standin"
    ) as raw:
        response = await raw.post("/v1/faulty", headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "api_error"
    assert standin.store.find(PLATFORM, "prod_half") is None


async def test_reset_forgets_everything_but_the_configured_endpoints(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    await client.v1.webhook_endpoints.create_async(
        {"url": server.extra_url, "enabled_events": ["*"]}
    )
    await client.v1.products.create_async({"name": "Before"}, options={"idempotency_key": "r"})
    await server.delivered()
    async with httpx.AsyncClient(base_url=server.url) as raw:
        assert (await raw.post("/_standin/reset")).status_code == 200
    assert (await client.v1.products.list_async()).data == []
    assert (await client.v1.webhook_endpoints.list_async()).data == []
    after = await client.v1.products.create_async(
        {"name": "After"}, options={"idempotency_key": "r"}
    )
    assert after.name == "After"  # the key is new again
    await server.delivered()
    assert server.platform.types()[-1] == "product.created"
    [(body, _)] = server.extra.deliveries  # the endpoint made through the API went
    assert '"Before"' in body
