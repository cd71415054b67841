"""Stripe Connect against the Stripe stand-in through the official library: a seller
connects its account (OAuth, a single-use state bound to the seller, then the seller's own
confirmation: whoever completes its link connects nothing), its catalog is synced there and
its checkout made there with the platform's fee, and the order comes back through the
Connect endpoint into that seller's tenant only; two connected sellers' events never cross;
an unknown account's event and a disconnected one's are recorded and held, never applied
elsewhere; an account's events before its connection wait, through restarts and races, and
are applied once after; a repeated delivery is applied once;
`account.application.deauthorized` disconnects; the callback is a page for a browser."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import jwt
import nats
import pytest

from tessera.billing.checkout import stripe_shapes as shapes
from tessera.billing.settings import BillingSettings
from tessera.billing.stripe.fees import application_fee_amount, platform_fee_for
from tessera.billing.stripe_events import awaiting
from tessera.devstack.seller_keys import publish_seller_keys
from tessera.devstack.stripe_standin.testing import API_KEY, StandInServer, running_standin
from tessera.devstack.stripe_standin.webhooks import Target
from tessera.shared.events.auth import SellerChanged
from tessera.shared.sellers import HOME_SELLER_ID, Tenant

pytestmark = pytest.mark.integration

CONNECT_SECRET = "whsec_billing_connect_test"
SELLER_A = UUID("00000000-0000-4000-8000-0000000000a1")
SELLER_B = UUID("00000000-0000-4000-8000-0000000000b2")
A_TEST, A_LIVE, B_TEST = (
    Tenant(SELLER_A, "test"),
    Tenant(SELLER_A, "live"),
    Tenant(SELLER_B, "test"),
)
SKU = {
    "sku": "tool-lifetime", "product": "tool", "name": "Tool, for life", "unit_amount": 4900,
    "currency": "usd", "policy": "tool-lifetime",
}  # fmt: skip


@asynccontextmanager
async def secret_keys(
    billing: Any, tenants: tuple[Tenant, ...]
) -> AsyncIterator[dict[Tenant, dict[str, str]]]:
    """A secret key's headers per tenant, published on APIKEYS as auth would."""
    nc = await nats.connect(billing.nats_url)
    context = billing.app.state.context
    try:
        texts = await publish_seller_keys(
            nc.jetstream(), billing.namespace, context.key_book, context.sellers,
            [(tenant, "secret") for tenant in tenants],
        )  # fmt: skip
        yield {t: {"authorization": f"Bearer {text}"} for (t, _), text in texts.items()}
    finally:
        await nc.close()


@asynccontextmanager
async def connect_stack(
    database_url: str, infra_settings: Any, billing_starter: Any
) -> AsyncIterator[tuple[StandInServer, Any]]:
    """The stand-in, and billing with its key, Connect client id and Connect endpoint, the
    stand-in delivering connected accounts' events to that endpoint."""
    async with running_standin() as standin:
        billing = await billing_starter(
            database_url, infra_settings, stripe_secret_key=API_KEY, stripe_api_base=standin.url,
            stripe_connect_client_id="ca_standin", stripe_connect_webhook_secrets=[CONNECT_SECRET],
            stripe_sync_retry_seconds=0.2, platform_fee_percent=Decimal("10"),
        )  # fmt: skip
        standin.standin.deliverer.add(
            Target(f"{billing.url}/webhooks/stripe/connect", CONNECT_SECRET, True)
        )
        try:
            yield standin, billing
        finally:
            await billing.stop()


JSON = {"accept": "application/json"}


async def authorize(
    billing: Any, standin: StandInServer, headers: dict[str, str], *, browser_accept: str = ""
) -> dict[str, Any]:
    """Whoever holds the link the key's tenant got completes Stripe's page: the callback
    answers the pending authorization (as JSON; the page when `browser_accept` says HTML)."""
    started = await billing.client.post("/v1/stripe/connect", headers=headers)
    assert started.status_code == 201, started.text
    async with httpx.AsyncClient() as browser:
        page = await browser.get(started.json()["url"])
        action = page.text.split('action="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        back = await browser.post(standin.url + action)
        assert back.headers["location"].startswith(f"{billing.url}/v1/stripe/connect/callback?")
        if browser_accept:
            done = await browser.get(back.headers["location"], headers={"accept": browser_accept})
            assert done.status_code == 200, done.text
            return {"page": done}
        done = await browser.get(back.headers["location"])  # a script's `*/*`: JSON
        assert done.status_code == 200, done.text
        again = await browser.get(back.headers["location"], headers=JSON)
        assert again.json()["type"].endswith("connect-state-invalid")  # the state is used once
    pending: dict[str, Any] = done.json()
    assert (pending["status"], pending["livemode"]) == ("pending_confirmation", False)
    return pending


async def confirm(billing: Any, pending: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    answer: httpx.Response = await billing.client.post(
        f"/v1/stripe/connect/pending/{pending['id']}/confirm", headers=headers
    )
    return answer


async def connect(billing: Any, standin: StandInServer, headers: dict[str, str]) -> str:
    """Connect the key's tenant as its developer would: the URL billing gives, Stripe's
    page, back to billing's callback, then the seller's confirmation. The account's id."""
    pending = await authorize(billing, standin, headers)
    assert (
        pending["confirm_url"] == f"{billing.url}/v1/stripe/connect/pending/{pending['id']}/confirm"
    )
    confirmed = await confirm(billing, pending, headers)
    assert confirmed.status_code == 200, confirmed.text
    connection = confirmed.json()
    assert (connection["status"], connection["livemode"]) == ("connected", False)
    assert connection["account_id"] == pending["account_id"]
    return str(connection["account_id"])


async def until(billing: Any, sql: str, *args: Any, want: Any, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (got := await billing.value(sql, *args)) != want:
        assert asyncio.get_running_loop().time() < deadline, (sql, got)
        await asyncio.sleep(0.05)


async def test_a_connected_sellers_catalog_and_checkout_are_on_its_account(
    database_url: str, infra_settings: Any, billing_starter: Any
) -> None:
    stack = connect_stack(database_url, infra_settings, billing_starter)
    async with stack as (standin, billing), secret_keys(billing, (A_TEST, A_LIVE)) as keys:
        a = keys[A_TEST]
        await billing.client.post("/v1/products", json={"code": "tool", "name": "T"}, headers=a)
        made = await billing.client.post("/v1/one-time-prices", json=SKU, headers=a)
        assert made.json()["prices"][0]["sync"]["state"] == "awaiting_connect"
        assert (await billing.client.get("/v1/stripe/connection", headers=a)).json() == {
            "status": "not_connected", "account_id": None, "livemode": None,
            "connected_at": None, "disconnected_at": None, "disconnected_by": None,
        }  # fmt: skip
        unsold = await billing.client.post(
            "/v1/checkout/sessions", json={"sku": "tool-lifetime"}, headers=a
        )
        assert unsold.json()["type"].endswith("not-connected")
        # The platform's key is a test key: a live tenant cannot connect through it.
        live = await billing.client.post("/v1/stripe/connect", headers=keys[A_LIVE])
        assert live.status_code == 409
        assert live.json()["type"].endswith("connect-unavailable")

        account = await connect(billing, standin, a)
        again = await billing.client.post("/v1/stripe/connect", headers=a)
        assert again.json()["type"].endswith("already-connected")

        # What waited for the account is synced to it, nothing to the platform's.
        await until(
            billing, "SELECT count(*) FROM stripe_sync WHERE seller_id = $1 AND state <> 'synced'",
            SELLER_A, want=0,
        )  # fmt: skip
        stripe = standin.client()
        on_a: Any = {"stripe_account": account}
        [product] = (await stripe.v1.products.list_async(options=on_a)).data
        assert product.metadata["tessera_seller"] == str(SELLER_A)
        platform_names = {p.name for p in (await stripe.v1.products.list_async()).data}
        assert "T" not in platform_names

        # A checkout on A's account, with the platform's 10 % fee, returning to A's own
        # pages (a test-mode key may name http ones); the order comes back through the
        # Connect endpoint into A's test tenant.
        own = {"success_url": "http://shop-a.example:8080/thanks?cs={CHECKOUT_SESSION_ID}",
               "cancel_url": "http://shop-a.example:8080/pricing"}  # fmt: skip
        started = await billing.client.post(
            "/v1/checkout/sessions",
            json={"sku": "tool-lifetime", "quantity": 2, **own},
            headers=a,
        )
        assert started.status_code == 201, started.text
        session = await stripe.v1.checkout.sessions.retrieve_async(
            started.json()["id"], options=on_a
        )
        assert (session.success_url, session.cancel_url) == (own["success_url"], own["cancel_url"])
        outcome = f"/v1/checkout/sessions/{session.id}"
        assert (await billing.client.get(outcome)).json()["state"] == "pending"
        async with httpx.AsyncClient(base_url=standin.url) as raw:
            paid = await raw.post(
                f"/_standin/checkout/sessions/{session.id}/complete",
                json={"email": "buyer@example.com"},
            )
        assert paid.status_code == 200, paid.text
        await until(
            billing, "SELECT status FROM orders WHERE checkout_session_id = $1", session.id,
            want="paid",
        )  # fmt: skip
        [order] = await billing.fetch("SELECT seller_id, mode, amount_total FROM orders")
        assert tuple(order) == (SELLER_A, "test", 9800)
        # Its success page (which knows only the session id) finds the seller's order.
        seen = (await billing.client.get(outcome)).json()
        assert (seen["state"], seen["kind"], seen["sku"]) == ("paid", "payment", "tool-lifetime")
        assert seen["email_hint"] == "b•••@e•••.com" and "buyer@" not in str(seen)
        intent = await stripe.v1.payment_intents.retrieve_async(
            str(paid.json()["payment_intent"]), options=on_a
        )
        assert intent.application_fee_amount == 980
        await until(
            billing, "SELECT count(*) FROM accounts WHERE seller_id = $1 AND mode = 'test'",
            SELLER_A, want=1,
        )  # fmt: skip

        # The buyer's billing portal opens on A's account (its Stripe customer is only there).
        billing.app.state.context.sellers.apply(
            SellerChanged(
                seller_id=SELLER_A, mode="live", slug="seller-a", name="A",
                signup_policy="closed", status="active", version=2, plan_status="active",
            )
        )  # fmt: skip
        buyer = await billing.value("SELECT id FROM accounts WHERE seller_id = $1", SELLER_A)
        now = int(time.time())
        claims = {
            "iss": "tessera-auth", "aud": "tessera", "sub": str(uuid.uuid4()), "acc": str(buyer),
            "role": "customer", "sid": "s", "jti": "j", "iat": now, "exp": now + 300,
            "sel": "seller-a", "mod": "test",
        }  # fmt: skip
        token = jwt.encode(claims, billing.signing_key, algorithm="EdDSA", headers={"kid": "test"})
        portal = await billing.client.post(
            "/v1/me/billing-portal", headers={"authorization": f"Bearer {token}"}
        )
        assert portal.status_code == 200, portal.text
        assert portal.json()["url"].startswith(standin.url)

        # The seller disconnects: Stripe forgets the platform, the catalog waits again.
        assert (await billing.client.delete("/v1/stripe/connection", headers=a)).status_code == 204
        gone = (await billing.client.get("/v1/stripe/connection", headers=a)).json()
        assert (gone["status"], gone["disconnected_by"]) == ("disconnected", "seller")
        await billing.client.patch("/v1/products/tool", json={"name": "T2"}, headers=a)
        tool = (await billing.client.get("/v1/products/tool", headers=a)).json()
        assert tool["sync"]["state"] == "awaiting_connect"
        assert (await billing.client.delete("/v1/stripe/connection", headers=a)).status_code == 404


def purchase_on(account: str, sku: str = "tool-lifetime") -> dict[str, Any]:
    ids = {k: shapes.stripe_id(p) for k, p in (("s", "cs"), ("pi", "pi"), ("c", "cus"))}
    session = shapes.checkout_session(
        session_id=ids["s"], email="buyer@example.com", sku=sku, quantity=1,
        amount_total=4900, currency="usd", customer=ids["c"], payment_intent=ids["pi"],
    )  # fmt: skip
    return {**shapes.event("checkout.session.completed", session), "account": account}


async def deliver(billing: Any, event: dict[str, Any]) -> dict[str, Any]:
    body, header = shapes.signed(event, CONNECT_SECRET)
    answer = await billing.client.post(
        "/webhooks/stripe/connect",
        content=body,
        headers={"stripe-signature": header, "content-type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def test_connected_accounts_events_reach_their_own_seller_only(
    database_url: str, infra_settings: Any, billing_starter: Any
) -> None:
    stack = connect_stack(database_url, infra_settings, billing_starter)
    async with stack as (standin, billing), secret_keys(billing, (A_TEST, B_TEST)) as keys:
        for tenant in (A_TEST, B_TEST):
            h = keys[tenant]
            await billing.client.post("/v1/products", json={"code": "tool", "name": "T"}, headers=h)
            await billing.client.post("/v1/one-time-prices", json=SKU, headers=h)
        acct_a = await connect(billing, standin, keys[A_TEST])
        acct_b = await connect(billing, standin, keys[B_TEST])

        def orders_of(seller: UUID) -> Any:
            return billing.value("SELECT count(*) FROM orders WHERE seller_id = $1", seller)

        # A's event, delivered twice: one order, A's; B untouched.
        event = purchase_on(acct_a)
        assert (await deliver(billing, event))["status"] == "received"
        assert (await deliver(billing, event))["status"] == "duplicate"
        assert await billing.settled(event["id"]) == "processed"
        assert (await orders_of(SELLER_A), await orders_of(SELLER_B)) == (1, 0)
        row = await billing.fetch(
            "SELECT seller_id, mode, stripe_account, attempts FROM stripe_events WHERE id = $1",
            event["id"],
        )
        await until(
            billing, "SELECT attempts FROM stripe_events WHERE id = $1", event["id"], want=2
        )
        assert tuple(row[0])[:3] == (SELLER_A, "test", acct_a)

        # An account nobody connected: recorded (the operator sees it), waiting for a
        # connection of that account, applied nowhere meanwhile.
        stray = purchase_on("acct_1NobodyConnected")
        answer = await deliver(billing, stray)
        assert answer["status"] == "held" and "connected to no seller" in answer["detail"]
        [stored] = await billing.fetch(
            "SELECT seller_id, mode, status, hold_key FROM stripe_events WHERE id = $1",
            stray["id"],
        )
        assert tuple(stored) == (HOME_SELLER_ID, "test", "held", "awaiting-connection")
        assert await billing.value("SELECT count(*) FROM orders") == 1

        # Stripe's deauthorization (the seller removed the platform in its Dashboard):
        # B is disconnected; an event of its account afterwards waits, applied nowhere.
        await asyncio.to_thread(standin.client().oauth.deauthorize, {"stripe_user_id": acct_b})
        await until(
            billing, "SELECT status FROM stripe_connections WHERE seller_id = $1", SELLER_B,
            want="disconnected",
        )  # fmt: skip
        late = (await billing.client.get("/v1/stripe/connection", headers=keys[B_TEST])).json()
        assert late["disconnected_by"] == "stripe"
        after = await deliver(billing, purchase_on(acct_b))
        assert after["status"] == "held"
        assert (await orders_of(SELLER_A), await orders_of(SELLER_B)) == (1, 0)
        # A deauthorization Stripe sent before A's connection was made (a late, reordered
        # delivery) ends nothing.
        stale = {
            **shapes.event("account.application.deauthorized",
                           {"id": "ca_standin", "object": "application"},
                           created=int(time.time()) - 3600),
            "account": acct_a,
        }  # fmt: skip
        assert (await deliver(billing, stale))["status"] == "ignored"
        assert "made before" in await billing.value(
            "SELECT detail FROM stripe_events WHERE id = $1", stale["id"]
        )
        # So is a purchase made on A's account before A's connection (a late delivery from
        # an earlier connection of the account, perhaps another seller's): never A's order.
        earlier = {**purchase_on(acct_a), "created": int(time.time()) - 3600}
        assert (await deliver(billing, earlier))["status"] == "ignored"
        assert await orders_of(SELLER_A) == 1
        # A, still connected, keeps working.
        more = purchase_on(acct_a)
        await deliver(billing, more)
        assert await billing.settled(more["id"]) == "processed"
        assert await orders_of(SELLER_A) == 2

        # The platform endpoint never takes a connected account's event as its own.
        body, header = shapes.signed(
            purchase_on(acct_a), billing.settings.stripe_webhook_secrets[0].get_secret_value()
        )
        wrong = await billing.client.post(
            "/webhooks/stripe", content=body,
            headers={"stripe-signature": header, "content-type": "application/json"},
        )  # fmt: skip
        assert wrong.json()["status"] == "ignored"
        assert await orders_of(HOME_SELLER_ID) == 0


async def test_a_connect_state_is_the_sellers_own_and_refused_once_used_or_unknown(
    database_url: str, infra_settings: Any, billing_starter: Any
) -> None:
    async with connect_stack(database_url, infra_settings, billing_starter) as (_, billing):
        for query in (
            "state=" + "x" * 43 + "&code=ac_123",
            "state=" + "y" * 43 + "&error=access_denied",
        ):
            answer = await billing.client.get(f"/v1/stripe/connect/callback?{query}", headers=JSON)
            assert answer.status_code == 400
            assert answer.json()["type"].endswith("connect-state-invalid")
        assert (await billing.client.get("/v1/stripe/connect/callback")).status_code == 422
        assert await billing.value("SELECT count(*) FROM stripe_connections") == 0

        # The Connect endpoint checks its own secrets, through the same problems.
        event = purchase_on("acct_1Anyone")
        for secret, slug in (
            (CONNECT_SECRET, None),
            (billing.settings.stripe_webhook_secrets[0].get_secret_value(), "signature-mismatch"),
        ):
            body, header = shapes.signed(event, secret)
            answer = await billing.client.post(
                "/webhooks/stripe/connect", content=body,
                headers={"stripe-signature": header, "content-type": "application/json"},
            )  # fmt: skip
            if slug is None:
                assert answer.status_code == 200, answer.text
            else:
                assert (answer.status_code, answer.json()["type"].split(":")[-1]) == (400, slug)
        unsigned = await billing.client.post(
            "/webhooks/stripe/connect", content=b"{}", headers={"content-type": "application/json"}
        )
        assert unsigned.json()["type"].endswith("signature-missing")


async def test_without_a_client_id_the_connect_endpoint_takes_no_delivery(
    database_url: str, infra_settings: Any, billing_starter: Any
) -> None:
    billing = await billing_starter(
        database_url, infra_settings, stripe_connect_webhook_secrets=[CONNECT_SECRET]
    )
    try:
        body, header = shapes.signed(purchase_on("acct_1Anyone"), CONNECT_SECRET)
        answer = await billing.client.post(
            "/webhooks/stripe/connect", content=body,
            headers={"stripe-signature": header, "content-type": "application/json"},
        )  # fmt: skip
        assert (answer.status_code, answer.json()["type"].split(":")[-1]) == (
            400, "signature-mismatch"
        )  # fmt: skip
        assert await billing.value("SELECT count(*) FROM stripe_events") == 0
    finally:
        await billing.stop()


@pytest.mark.parametrize(
    ("percent", "total", "fee"),
    [("0", 4900, 0), ("10", 9800, 980), ("2.5", 999, 25), ("2.5", 980, 25), ("100", 4900, 4900)],
)
def test_the_platform_fee_is_the_percent_of_the_total_rounded_half_up(
    percent: str, total: int, fee: int
) -> None:
    settings = BillingSettings(platform_fee_percent=Decimal(percent))
    assert application_fee_amount(platform_fee_for(settings, A_TEST), total) == fee
    assert platform_fee_for(settings, Tenant(HOME_SELLER_ID, "test")) == 0  # the platform's own


async def test_whoever_completes_a_sellers_link_connects_nothing_until_the_seller_confirms(
    database_url: str, infra_settings: Any, billing_starter: Any
) -> None:
    stack = connect_stack(database_url, infra_settings, billing_starter)
    async with stack as (standin, billing), secret_keys(billing, (A_TEST, B_TEST)) as keys:
        a, b = keys[A_TEST], keys[B_TEST]
        # A's link reaches an attacker, who completes Stripe's page with their own account.
        theirs = await authorize(billing, standin, a)
        assert await billing.value("SELECT count(*) FROM stripe_connections") == 0
        assert (await billing.client.get("/v1/stripe/connection", headers=a)).json()[
            "status"
        ] == "not_connected"
        # Only A's own key confirms it: none, another seller's, a made-up id are refused.
        assert (await confirm(billing, theirs, {})).status_code == 401
        for headers, pending_id in ((b, theirs["id"]), (a, str(uuid.uuid4()))):
            refused = await confirm(billing, {"id": pending_id}, headers)
            assert refused.status_code == 404, refused.text
            assert refused.json()["type"].endswith("no-pending-connection")
        assert (await billing.client.get("/v1/stripe/connect/pending", headers=b)).json() == []
        assert await billing.value("SELECT count(*) FROM stripe_connections") == 0

        # A lists what waits (the account id to check in its Dashboard); its own link, its
        # own account, confirmed: that one is connected, the attacker's is dropped.
        own = await authorize(billing, standin, a)
        listed = (await billing.client.get("/v1/stripe/connect/pending", headers=a)).json()
        assert {p["account_id"] for p in listed} == {theirs["account_id"], own["account_id"]}
        confirmed = await confirm(billing, own, a)
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["account_id"] == own["account_id"]
        assert (await billing.client.get("/v1/stripe/connect/pending", headers=a)).json() == []
        late = await confirm(billing, theirs, a)
        assert late.json()["type"].endswith("no-pending-connection")
        [(account, by_seller)] = await billing.fetch(
            "SELECT account_id, seller_id FROM stripe_connections WHERE status = 'connected'"
        )
        assert (account, by_seller) == (own["account_id"], SELLER_A)

        # B cannot take an account A has connected (its events could not say whose). The
        # stand-in makes a new account per authorization: the same account authorizing B's
        # link is written in.
        twice = await authorize(billing, standin, b)
        await billing.value(
            "UPDATE stripe_connect_pending SET account_id = $1 WHERE id = $2",
            own["account_id"], UUID(twice["id"]),
        )  # fmt: skip
        in_use = await confirm(billing, twice, b)
        assert in_use.json()["type"].endswith("account-in-use")
        # Refused whole: B's authorization still waits, B has no connection.
        assert len((await billing.client.get("/v1/stripe/connect/pending", headers=b)).json()) == 1
        assert (await billing.client.get("/v1/stripe/connection", headers=b)).json()[
            "status"
        ] == "not_connected"


async def test_the_callback_is_a_page_for_a_browser(
    database_url: str, infra_settings: Any, billing_starter: Any
) -> None:
    stack = connect_stack(database_url, infra_settings, billing_starter)
    async with stack as (standin, billing), secret_keys(billing, (A_TEST,)) as keys:
        browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        page = (await authorize(billing, standin, keys[A_TEST], browser_accept=browser_accept))[
            "page"
        ]
        assert page.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        [pending] = (
            await billing.client.get("/v1/stripe/connect/pending", headers=keys[A_TEST])
        ).json()
        assert "not connected yet" in page.text
        assert pending["account_id"] in page.text and pending["confirm_url"] in page.text
        css = await billing.client.get("/v1/stripe/connect/assets/checkout.css")
        assert (css.status_code, css.headers["content-type"].split(";")[0]) == (200, "text/css")
        assert 'href="/v1/stripe/connect/assets/checkout.css"' in page.text
        assert "Test mode: no real payment" not in page.text  # the test checkout's banner

        # Refusals are pages too, with the status and what to do next; anything but a
        # browser gets problem+json, as from every route.
        used = await billing.client.get(
            "/v1/stripe/connect/callback?state=" + "z" * 43 + "&code=ac_1",
            headers={"accept": browser_accept},
        )
        assert used.status_code == 400
        assert used.headers["content-type"].startswith("text/html")
        assert "What to do next" in used.text and "POST /v1/stripe/connect" in used.text
        for accept in ("*/*", "application/json"):
            script = await billing.client.get(
                "/v1/stripe/connect/callback?state=" + "z" * 43 + "&code=ac_1",
                headers={"accept": accept},
            )
            assert script.status_code == 400
            assert script.headers["content-type"] == "application/problem+json"


def settings_of(standin: StandInServer) -> dict[str, Any]:
    return {
        "stripe_secret_key": API_KEY, "stripe_api_base": standin.url,
        "stripe_connect_client_id": "ca_standin", "stripe_connect_webhook_secrets": [CONNECT_SECRET],
    }  # fmt: skip


async def status_of(billing: Any, event: dict[str, Any]) -> tuple[Any, ...]:
    [row] = await billing.fetch(
        "SELECT status, seller_id, mode, hold_key FROM stripe_events WHERE id = $1", event["id"]
    )
    return tuple(row)


async def test_an_accounts_events_before_its_connection_wait_and_are_applied_once_after(
    database_url: str, infra_settings: Any, billing_starter: Any
) -> None:
    async with running_standin() as standin:
        first = await billing_starter(database_url, infra_settings, **settings_of(standin))
        async with secret_keys(first, (A_TEST,)) as keys:
            a = keys[A_TEST]
            await first.client.post("/v1/products", json={"code": "tool", "name": "T"}, headers=a)
            await first.client.post("/v1/one-time-prices", json=SKU, headers=a)
            pending = await authorize(first, standin, a)
            account = pending["account_id"]
            # Stripe sends the account's events as soon as it authorized the platform: they
            # wait (delivered twice: recorded once), and so does a late event from before
            # this authorization; a type billing does not act on is ignored at once.
            early = purchase_on(account)
            assert (await deliver(first, early))["status"] == "held"
            assert (await deliver(first, early))["status"] == "duplicate"
            before = {**purchase_on(account), "created": int(time.time()) - 3600}
            assert (await deliver(first, before))["status"] == "held"
            noise = {**shapes.event("account.updated", {"id": account, "object": "account"}),
                     "account": account}  # fmt: skip
            assert (await deliver(first, noise))["status"] == "ignored"
            assert await status_of(first, early) == (
                "held", HOME_SELLER_ID, "test", "awaiting-connection"
            )  # fmt: skip
        await first.stop()  # a restart while they wait

        # Confirmed on a replica that applies nothing (run_workers off), which then stops:
        # the hand-over committed with the connection, the events wait as `received`.
        second = await billing_starter(
            database_url, infra_settings, run_workers=False, **settings_of(standin)
        )
        async with secret_keys(second, (A_TEST,)) as keys:
            assert (await confirm(second, pending, keys[A_TEST])).status_code == 200
        assert await status_of(second, early) == ("received", SELLER_A, "test", None)
        assert await second.value("SELECT count(*) FROM orders") == 0
        await second.stop()

        third = await billing_starter(database_url, infra_settings, **settings_of(standin))
        try:
            assert await third.settled(early["id"]) == "processed"
            assert (await deliver(third, early))["status"] == "duplicate"
            await until(third, "SELECT attempts FROM stripe_events WHERE id = $1", early["id"],
                        want=3)  # fmt: skip
            [order] = await third.fetch("SELECT seller_id, mode FROM orders")
            assert tuple(order) == (SELLER_A, "test")
            # The late one belonged to an earlier connection of the account, if any: never
            # this seller's.
            assert (await status_of(third, before))[:2] == ("ignored", HOME_SELLER_ID)
            assert "before" in await third.value(
                "SELECT detail FROM stripe_events WHERE id = $1", before["id"]
            )
            assert await third.value("SELECT count(*) FROM orders") == 1
        finally:
            await third.stop()


async def test_an_event_recorded_while_its_connection_commits_is_never_left_waiting(
    database_url: str, infra_settings: Any, billing_starter: Any
) -> None:
    stack = connect_stack(database_url, infra_settings, billing_starter)
    async with stack as (standin, billing), secret_keys(billing, (A_TEST,)) as keys:
        a = keys[A_TEST]
        await billing.client.post("/v1/products", json={"code": "tool", "name": "T"}, headers=a)
        await billing.client.post("/v1/one-time-prices", json=SKU, headers=a)
        pending = await authorize(billing, standin, a)
        event = purchase_on(pending["account_id"])
        # The worst interleaving, made to happen: the confirmation has written the
        # connection and looked for waiting events (none yet) but not committed (its audit
        # entry waits for this lock) when the event arrives, finds no connection, and is
        # recorded as waiting. The account's lock makes the ingress look again once the
        # connection commits.
        async with billing.pool.acquire() as blocker:
            audit_lock = blocker.transaction()
            await audit_lock.start()
            await blocker.execute("LOCK TABLE audit_log IN EXCLUSIVE MODE")
            confirming = asyncio.create_task(confirm(billing, pending, a))
            await until(
                billing, "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::regclass",
                "audit_log", want=1,
            )  # fmt: skip
            delivering = asyncio.create_task(deliver(billing, event))
            await until(
                billing, "SELECT status FROM stripe_events WHERE id = $1", event["id"], want="held"
            )
            await audit_lock.rollback()
        confirmed, delivered = await confirming, await delivering
        assert confirmed.status_code == 200, confirmed.text
        assert delivered["status"] == "held"
        assert await billing.settled(event["id"]) == "processed"
        assert (
            await billing.value("SELECT count(*) FROM orders WHERE seller_id = $1", SELLER_A) == 1
        )


async def test_waiting_events_are_swept_to_their_connection_or_given_up_after_three_days(
    database_url: str, infra_settings: Any, billing_starter: Any
) -> None:
    stack = connect_stack(database_url, infra_settings, billing_starter)
    async with stack as (standin, billing), secret_keys(billing, (A_TEST,)) as keys:
        a = keys[A_TEST]
        await billing.client.post("/v1/products", json={"code": "tool", "name": "T"}, headers=a)
        await billing.client.post("/v1/one-time-prices", json=SKU, headers=a)
        account = await connect(billing, standin, a)
        # A crash between recording an event as waiting and looking for its connection
        # (which committed meanwhile) leaves it held: the applier's sweep hands it over.
        left = purchase_on(account)
        body, _ = shapes.signed(left, CONNECT_SECRET)
        await billing.value(
            "INSERT INTO stripe_events (id, type, livemode, stripe_created, payload, status,"
            " detail, seller_id, mode, stripe_account, hold_key) VALUES ($1, $2, false,"
            " clock_timestamp(), $3::jsonb, 'held', 'waiting', $4, 'test', $5,"
            " 'awaiting-connection')",
            left["id"], left["type"], body.decode(), HOME_SELLER_ID, account,
        )  # fmt: skip
        # Nobody ever connects this one: after three days it is given up, with the reason.
        stray = purchase_on("acct_1NeverConnects")
        assert (await deliver(billing, stray))["status"] == "held"
        await billing.value(
            "UPDATE stripe_events SET received_at = received_at - interval '73 hours'"
            " WHERE id = $1",
            stray["id"],
        )
        await awaiting.sweep(billing.pool)
        assert await billing.settled(left["id"]) == "processed"
        assert await status_of(billing, stray) == ("ignored", HOME_SELLER_ID, "test", None)
        detail = await billing.value("SELECT detail FROM stripe_events WHERE id = $1", stray["id"])
        assert detail.startswith(
            "no seller connected acct_1NeverConnects in test mode within 3 days"
        )
        assert await billing.value("SELECT count(*) FROM orders") == 1


async def test_a_deauthorization_between_authorizing_and_confirming_ends_the_connection(
    database_url: str, infra_settings: Any, billing_starter: Any
) -> None:
    stack = connect_stack(database_url, infra_settings, billing_starter)
    async with stack as (standin, billing), secret_keys(billing, (A_TEST,)) as keys:
        pending = await authorize(billing, standin, keys[A_TEST])
        # The account's owner removes the platform before the seller confirms: Stripe's
        # event waits for the connection, and ends it as soon as it is made.
        await asyncio.to_thread(
            standin.client().oauth.deauthorize, {"stripe_user_id": pending["account_id"]}
        )
        await until(billing, "SELECT count(*) FROM stripe_events WHERE status = 'held'", want=1)
        assert (await confirm(billing, pending, keys[A_TEST])).status_code == 200
        await until(
            billing, "SELECT status FROM stripe_connections WHERE seller_id = $1", SELLER_A,
            want="disconnected",
        )  # fmt: skip
