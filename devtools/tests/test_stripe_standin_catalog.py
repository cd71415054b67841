"""Products and Prices through the official stripe library's async calls, and what every
endpoint shares: errors, idempotency, accounts, expand, paging, events and webhooks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe
from stripe.params import ProductCreateParams

from tessera.devstack.stripe_standin.testing import API_KEY, StandInServer


def error_of(error: stripe.StripeError) -> dict[str, Any]:
    """The `error` object of Stripe's error body."""
    assert isinstance(error.json_body, dict)
    body: dict[str, Any] = error.json_body["error"]
    return body


async def test_products_are_created_read_updated_archived_and_listed(
    client: stripe.StripeClient,
) -> None:
    product = await client.v1.products.create_async(
        {"name": "ChartGPT Pro", "metadata": {"sku": "chartgpt-pro"}, "description": "Charts"}
    )
    assert product.id.startswith("prod_")
    assert (product.object, product.name, product.active) == ("product", "ChartGPT Pro", True)
    assert product.metadata.to_dict() == {"sku": "chartgpt-pro"}
    assert isinstance(product.created, int) and product.livemode is False

    got = await client.v1.products.retrieve_async(product.id)
    assert got.to_dict() == product.to_dict()

    updated = await client.v1.products.update_async(
        product.id, {"name": "ChartGPT Pro 2", "metadata": {"tier": "pro", "sku": ""}}
    )
    assert updated.name == "ChartGPT Pro 2"
    assert updated.metadata.to_dict() == {"tier": "pro"}

    other = await client.v1.products.create_async({"name": "Other"})
    await client.v1.products.update_async(other.id, {"active": False})
    active = await client.v1.products.list_async({"active": True})
    assert [p.id for p in active.data] == [product.id]
    everything = await client.v1.products.list_async()
    assert [p.id for p in everything.data] == [other.id, product.id]  # newest first

    deleted = await client.v1.products.delete_async(other.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.products.retrieve_async(other.id)
    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"
    assert missing.value.param == "id"
    assert error_of(missing.value)["type"] == "invalid_request_error"


async def test_a_product_with_a_custom_id_and_a_default_price(client: stripe.StripeClient) -> None:
    product = await client.v1.products.create_async(
        {
            "id": "chartgpt-monthly",
            "name": "Monthly",
            "default_price_data": {
                "currency": "usd",
                "unit_amount": 1500,
                "recurring": {"interval": "month"},
            },
        }
    )
    assert product.id == "chartgpt-monthly"
    assert product.default_price is not None
    price = await client.v1.prices.retrieve_async(str(product.default_price))
    assert (price.product, price.unit_amount, price.type) == (product.id, 1500, "recurring")
    with pytest.raises(stripe.InvalidRequestError) as again:
        await client.v1.products.create_async({"id": "chartgpt-monthly", "name": "Again"})
    assert again.value.code == "resource_already_exists"


async def test_one_time_and_recurring_prices_with_lookup_keys(client: stripe.StripeClient) -> None:
    product = await client.v1.products.create_async({"name": "ChartGPT"})
    lifetime = await client.v1.prices.create_async(
        {"product": product.id, "currency": "USD", "unit_amount": 14900, "lookup_key": "lifetime"}
    )
    assert lifetime.id.startswith("price_")
    assert (lifetime.type, lifetime.recurring, lifetime.currency) == ("one_time", None, "usd")
    assert (lifetime.unit_amount, str(lifetime.unit_amount_decimal)) == (14900, "14900")
    monthly = await client.v1.prices.create_async(
        {
            "product": product.id,
            "currency": "usd",
            "unit_amount": 1900,
            "recurring": {"interval": "month"},
            "lookup_key": "monthly",
            "metadata": {"plan": "pro"},
        }
    )
    assert monthly.type == "recurring"
    assert monthly.recurring is not None
    assert (monthly.recurring.interval, monthly.recurring.interval_count) == ("month", 1)
    yearly = await client.v1.prices.create_async(
        {
            "product_data": {"name": "Yearly plan"},
            "currency": "usd",
            "unit_amount": 19000,
            "recurring": {"interval": "year"},
        }
    )
    assert yearly.product != product.id
    assert (await client.v1.products.retrieve_async(str(yearly.product))).name == "Yearly plan"

    by_key = await client.v1.prices.list_async({"lookup_keys": ["monthly", "lifetime"]})
    assert sorted(p.id for p in by_key.data) == sorted([monthly.id, lifetime.id])
    of_product = await client.v1.prices.list_async({"product": product.id, "type": "recurring"})
    assert [p.id for p in of_product.data] == [monthly.id]
    yearly_only = await client.v1.prices.list_async({"recurring": {"interval": "year"}})
    assert [p.id for p in yearly_only.data] == [yearly.id]

    # a lookup key names one price: taking it needs transfer_lookup_key
    with pytest.raises(stripe.InvalidRequestError) as taken:
        await client.v1.prices.create_async(
            {"product": product.id, "currency": "usd", "unit_amount": 2900, "lookup_key": "monthly"}
        )
    assert taken.value.param == "lookup_key"
    raised = await client.v1.prices.create_async(
        {
            "product": product.id,
            "currency": "usd",
            "unit_amount": 2900,
            "recurring": {"interval": "month"},
            "lookup_key": "monthly",
            "transfer_lookup_key": True,
        }
    )
    assert (await client.v1.prices.retrieve_async(monthly.id)).lookup_key is None
    [current] = (await client.v1.prices.list_async({"lookup_keys": ["monthly"]})).data
    assert current.id == raised.id

    # archive: prices are never deleted, they go inactive
    archived = await client.v1.prices.update_async(monthly.id, {"active": False})
    assert archived.active is False
    active = await client.v1.prices.list_async({"product": product.id, "active": True})
    assert sorted(p.id for p in active.data) == sorted([lifetime.id, raised.id])
    with pytest.raises(stripe.InvalidRequestError) as has_prices:
        await client.v1.products.delete_async(product.id)
    assert has_prices.value.code == "product_has_prices"


async def test_bad_input_answers_stripe_errors(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await client.v1.products.create_async({"name": "X", "colour": "red"})  # type: ignore[typeddict-unknown-key]
    assert (unknown.value.code, unknown.value.param) == ("parameter_unknown", "colour")
    with pytest.raises(stripe.InvalidRequestError) as no_name:
        await client.v1.products.create_async({})  # type: ignore[typeddict-item]
    assert (no_name.value.code, no_name.value.param) == ("parameter_missing", "name")
    with pytest.raises(stripe.InvalidRequestError) as interval:
        await client.v1.prices.create_async(
            {
                "product_data": {"name": "X"},
                "currency": "usd",
                "unit_amount": 100,
                "recurring": {"interval": "fortnight"},
            }
        )
    assert interval.value.param == "recurring[interval]"
    with pytest.raises(stripe.InvalidRequestError) as no_product:
        await client.v1.prices.create_async(
            {"product": "prod_nothing", "currency": "usd", "unit_amount": 100}
        )
    assert (no_product.value.code, no_product.value.param) == ("resource_missing", "product")


async def test_keys_and_accounts_are_checked(server: StandInServer) -> None:
    no_key = stripe.StripeClient(
        "sk_live_nope", base_addresses={"api": server.url}, http_client=stripe.HTTPXClient()
    )
    with pytest.raises(stripe.AuthenticationError):
        await no_key.v1.products.list_async()
    async with httpx.AsyncClient(base_url=server.url) as raw:
        response = await raw.get("/v1/products")
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "invalid_request_error"
        nowhere = await raw.get("/v1/nowhere", headers={"Authorization": f"Bearer {API_KEY}"})
        assert nowhere.status_code == 404
        assert nowhere.json()["error"]["message"].startswith("Unrecognized request URL")
        as_json = await raw.post(
            "/v1/products",
            json={"name": "x"},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        assert as_json.status_code == 400
    client = stripe.StripeClient(
        API_KEY, base_addresses={"api": server.url}, http_client=stripe.HTTPXClient()
    )
    with pytest.raises(stripe.PermissionError) as foreign:
        await client.v1.products.list_async(options={"stripe_account": "acct_nobody"})
    assert foreign.value.http_status == 403
    assert error_of(foreign.value)["code"] == "account_invalid"


async def test_idempotency_keys_replay_or_refuse(client: stripe.StripeClient) -> None:
    params: ProductCreateParams = {"name": "Once"}
    first = await client.v1.products.create_async(params, options={"idempotency_key": "k1"})
    again = await client.v1.products.create_async(params, options={"idempotency_key": "k1"})
    assert again.id == first.id
    assert again.last_response is not None
    assert again.last_response.headers["idempotent-replayed"] == "true"
    assert len((await client.v1.products.list_async()).data) == 1
    # a replay answers what the first request did, not what the object has become since
    await client.v1.products.update_async(first.id, {"name": "Renamed"})
    replayed = await client.v1.products.create_async(params, options={"idempotency_key": "k1"})
    assert replayed.name == "Once"
    with pytest.raises(stripe.IdempotencyError) as refused:
        await client.v1.products.create_async({"name": "Twice"}, options={"idempotency_key": "k1"})
    assert refused.value.http_status == 400
    # an error is replayed as well
    for _ in range(2):
        with pytest.raises(stripe.InvalidRequestError):
            await client.v1.prices.create_async(
                {"product": "prod_none", "currency": "usd", "unit_amount": 1},
                options={"idempotency_key": "k2"},
            )


async def test_expand_and_paging(client: stripe.StripeClient) -> None:
    product = await client.v1.products.create_async({"name": "Paged"})
    prices = [
        await client.v1.prices.create_async(
            {"product": product.id, "currency": "eur", "unit_amount": 100 + n}
        )
        for n in range(5)
    ]
    expanded = await client.v1.prices.retrieve_async(prices[0].id, {"expand": ["product"]})
    assert isinstance(expanded.product, stripe.Product)
    assert expanded.product.name == "Paged"
    listed = await client.v1.prices.list_async({"limit": 2, "expand": ["data.product"]})
    assert listed.has_more is True and listed.url == "/v1/prices"
    assert [p.id for p in listed.data] == [prices[4].id, prices[3].id]
    assert isinstance(listed.data[0].product, stripe.Product)
    rest = await client.v1.prices.list_async({"limit": 2, "starting_after": prices[3].id})
    assert [p.id for p in rest.data] == [prices[2].id, prices[1].id]
    every = [p.id async for p in listed.auto_paging_iter()]
    assert every == [p.id for p in reversed(prices)]


async def test_events_are_kept_and_delivered_signed(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    server.platform.failures = 1  # the first delivery fails and is retried
    product = await client.v1.products.create_async({"name": "Evented"})
    await client.v1.products.update_async(product.id, {"name": "Renamed"})
    await server.delivered()
    delivered = server.platform.events()
    assert [e.type for e in delivered] == ["product.created", "product.updated"]
    updated = delivered[1]
    assert updated.id.startswith("evt_") and updated.livemode is False
    assert updated.api_version and isinstance(updated.created, int)
    assert updated.data.object["name"] == "Renamed"
    assert updated.data.previous_attributes["name"] == "Evented"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(*server.platform.deliveries[0], "whsec_wrong")

    listed = await client.v1.events.list_async({"type": "product.*"})
    assert [e.id for e in listed.data] == [delivered[1].id, delivered[0].id]
    got = await client.v1.events.retrieve_async(delivered[0].id)
    assert got.type == "product.created" and got.pending_webhooks == 0
    # the event names the request that caused it
    assert product.last_response is not None
    assert delivered[0].request.id == product.last_response.request_id
    async with httpx.AsyncClient(base_url=server.url) as raw:
        attempts = (await raw.get("/_standin/deliveries")).json()["data"]
    assert [(a["event"], a["status"]) for a in attempts] == [
        (delivered[0].id, 500),
        (delivered[0].id, 200),
        (delivered[1].id, 200),
    ]


async def test_search_in_stripes_query_language(client: stripe.StripeClient) -> None:
    pro = await client.v1.products.create_async(
        {"name": "ChartGPT Pro", "metadata": {"sku": "pro"}}
    )
    basic = await client.v1.products.create_async(
        {"name": "ChartGPT Basic", "metadata": {"sku": "basic"}}
    )
    await client.v1.products.update_async(basic.id, {"active": False})
    by_sku = await client.v1.products.search_async({"query": "metadata['sku']:'pro'"})
    assert by_sku.to_dict()["object"] == "search_result"
    assert [p.id for p in by_sku.data] == [pro.id]
    both = await client.v1.products.search_async({"query": "name~'chartgpt' AND -active:'false'"})
    assert [p.id for p in both.data] == [pro.id]
    either = await client.v1.products.search_async(
        {"query": "metadata['sku']:'pro' OR metadata['sku']:'basic'", "limit": 1}
    )
    assert either.has_more is True and either.next_page is not None
    assert [p.id async for p in either.auto_paging_iter()] == [basic.id, pro.id]
    price = await client.v1.prices.create_async(
        {"product": pro.id, "currency": "usd", "unit_amount": 900, "lookup_key": "pro-monthly"}
    )
    found = await client.v1.prices.search_async(
        {"query": f"product:'{pro.id}' AND lookup_key:'pro-monthly'"}
    )
    assert [p.id for p in found.data] == [price.id]
    for query, message in [
        ("colour:'red'", "unsupported search field"),
        ("name:'a' AND name:'b' OR name:'c'", "cannot combine"),
        ("name~'ab'", "at least 3"),
    ]:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            await client.v1.products.search_async({"query": query})
        assert message in str(refused.value.user_message)
