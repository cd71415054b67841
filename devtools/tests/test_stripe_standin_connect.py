"""Connect through the official library: accounts and account links, objects per
connected account with their events on the Connect endpoint, OAuth token and deauthorize."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe

from tessera.devstack.stripe_standin.testing import StandInServer


async def test_an_express_account_is_onboarded_through_its_account_link(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    account = await client.v1.accounts.create_async(
        {"type": "express", "email": "seller@example.com", "metadata": {"seller": "s1"}}
    )
    assert account.id.startswith("acct_") and account.type == "express"
    assert (account.charges_enabled, account.details_submitted) == (False, False)
    assert account.requirements is not None and account.requirements.currently_due
    link = await client.v1.account_links.create_async(
        {
            "account": account.id,
            "type": "account_onboarding",
            "return_url": "https://portal.example/connected",
            "refresh_url": "https://portal.example/again",
        }
    )
    assert link.object == "account_link" and link.url.startswith(server.url)
    async with httpx.AsyncClient() as browser:
        page = await browser.get(link.url)
        assert page.status_code == 200
        submitted = await browser.post(link.url)
        assert submitted.status_code == 303
        assert submitted.headers["location"] == "https://portal.example/connected"
        assert (await browser.post(link.url)).status_code == 404  # a link is used once
    onboarded = await client.v1.accounts.retrieve_async(account.id)
    assert (onboarded.charges_enabled, onboarded.payouts_enabled) == (True, True)
    own = await client.v1.accounts.retrieve_current_async(options={"stripe_account": account.id})
    assert own.id == account.id
    listed = await client.v1.accounts.list_async()
    assert [a.id for a in listed.data] == [account.id]

    await server.delivered()
    [updated] = server.connect.events()
    assert (updated.type, updated.account) == ("account.updated", account.id)
    assert updated.data.previous_attributes["charges_enabled"] is False
    assert server.platform.deliveries == []


async def test_objects_live_per_account_and_their_events_carry_it(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    account = await client.v1.accounts.create_async({"type": "standard"})
    on_seller: stripe.RequestOptions = {"stripe_account": account.id}
    product = await client.v1.products.create_async({"name": "Seller's"}, options=on_seller)
    await client.v1.prices.create_async(
        {"product": product.id, "currency": "usd", "unit_amount": 500}, options=on_seller
    )
    assert [p.id for p in (await client.v1.products.list_async(options=on_seller)).data] == [
        product.id
    ]
    assert (await client.v1.products.list_async()).data == []
    with pytest.raises(stripe.InvalidRequestError) as elsewhere:
        await client.v1.products.retrieve_async(product.id)
    assert elsewhere.value.code == "resource_missing"
    # the same idempotency key is a different request in another account
    first = await client.v1.customers.create_async(
        {}, options={**on_seller, "idempotency_key": "same"}
    )
    other = await client.v1.customers.create_async({}, options={"idempotency_key": "same"})
    assert first.id != other.id

    await server.delivered()
    events = server.connect.events()
    assert [e.type for e in events] == ["product.created", "price.created", "customer.created"]
    assert {e.account for e in events} == {account.id}
    assert server.platform.types() == ["customer.created"]
    event = await client.v1.events.retrieve_async(events[0].id, options=on_seller)
    assert event.account == account.id

    # a checkout on the seller's account completes there, its events on the Connect endpoint
    session = await client.v1.checkout.sessions.create_async(
        {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {"currency": "usd", "unit_amount": 700, "product": product.id},
                    "quantity": 1,
                }
            ],
        },
        options=on_seller,
    )
    async with httpx.AsyncClient(base_url=server.url) as raw:
        done = await raw.post(
            f"/_standin/checkout/sessions/{session.id}/complete", json={"email": "b@example.com"}
        )
    assert done.status_code == 200
    paid = await client.v1.checkout.sessions.retrieve_async(session.id, options=on_seller)
    assert paid.payment_status == "paid"
    await server.delivered()
    completed = server.connect.events()[-1]
    assert (completed.type, completed.account) == ("checkout.session.completed", account.id)


async def test_oauth_connects_and_deauthorizes_a_standard_account(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    url = client.oauth.authorize_url(
        {"scope": "read_write", "redirect_uri": "https://portal.example/oauth", "state": "xyz"}
    )
    assert url.startswith(f"{server.url}/oauth/authorize?")
    async with httpx.AsyncClient() as browser:
        page = await browser.get(url)
        assert page.status_code == 200
        action = page.text.split('action="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        connected = await browser.post(server.url + action)
    assert connected.status_code == 303
    back = urlsplit(connected.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == "https://portal.example/oauth"
    query = parse_qs(back.query)
    assert query["state"] == ["xyz"]

    token = await asyncio.to_thread(
        client.oauth.token, {"grant_type": "authorization_code", "code": query["code"][0]}
    )
    assert token.token_type == "bearer" and token.livemode is False
    assert token.stripe_user_id is not None and token.stripe_user_id.startswith("acct_")
    assert token.access_token is not None and token.access_token.startswith("sk_test_")
    with pytest.raises(stripe.oauth_error.InvalidGrantError):
        await asyncio.to_thread(
            client.oauth.token, {"grant_type": "authorization_code", "code": query["code"][0]}
        )

    # the access token acts as the connected account
    as_seller = server.client(token.access_token)
    product = await as_seller.v1.products.create_async({"name": "Via OAuth"})
    seen = await client.v1.products.retrieve_async(
        product.id, options={"stripe_account": token.stripe_user_id}
    )
    assert seen.name == "Via OAuth"

    gone = await asyncio.to_thread(
        client.oauth.deauthorize, {"stripe_user_id": token.stripe_user_id}
    )
    assert gone.stripe_user_id == token.stripe_user_id
    with pytest.raises(stripe.AuthenticationError):
        await as_seller.v1.products.list_async()
    with pytest.raises(stripe.PermissionError):
        await client.v1.products.list_async(options={"stripe_account": token.stripe_user_id})
    await server.delivered()
    assert server.connect.types() == ["product.created", "account.application.deauthorized"]
    assert server.connect.events()[-1].account == token.stripe_user_id
