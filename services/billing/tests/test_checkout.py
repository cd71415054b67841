"""Checkout: the test checkout end to end over HTTP, and Stripe Checkout through the official
library against a local stand-in that speaks Stripe's wire format."""

import json
import re
from typing import Any
from urllib.parse import parse_qs

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tessera.devstack.infra import free_port
from tessera.devstack.serving import LoopServer

pytestmark = pytest.mark.integration


async def test_buy_redirects_to_the_test_checkout_and_pay_provisions_over_http(
    billing: Any, eventually: Any
) -> None:
    buy = await billing.client.get("/buy/chartgpt-lifetime", follow_redirects=False)
    assert buy.status_code == 303
    location = buy.headers["location"]
    assert re.fullmatch(rf"{billing.url}/test-checkout/cs_test_[0-9a-f]+", location)
    page = await billing.client.get(location)
    assert page.status_code == 200
    assert "Pay 149.00 USD" in page.text
    assert "form-action 'self'" in page.headers["content-security-policy"]
    session_id = location.rsplit("/", 1)[1]
    paid = await billing.client.post(
        f"/test-checkout/{session_id}/pay", data={"email": "Pat@Example.com"}
    )
    assert paid.status_code == 303

    # the Pay button delivered two signed webhooks through the real ingress
    async def applied() -> list[tuple[str, str]]:
        rows = await billing.fetch("SELECT type, status FROM stripe_events ORDER BY received_at")
        found = [(r["type"], r["status"]) for r in rows]
        return found if all(status != "received" for _, status in found) else []

    assert await eventually(applied) == [
        ("checkout.session.completed", "processed"),
        ("charge.succeeded", "processed"),
    ]

    async def order_paid() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await billing.published("billing.order.paid.v1")
        return found

    [event] = await eventually(order_paid)
    assert event["email"] == "pat@example.com"
    receipt = await billing.value("SELECT receipt_url FROM orders")
    assert receipt.endswith(f"/test-checkout/{session_id}/receipt")
    again = await billing.client.post(
        f"/test-checkout/{session_id}/pay", data={"email": "pat@example.com"}
    )
    assert again.status_code == 303
    assert await billing.value("SELECT count(*) FROM stripe_events") == 2


async def test_the_dev_controls_refund_and_dispute_through_the_ingress(
    billing: Any, eventually: Any
) -> None:
    created = await billing.client.post("/v1/checkout/sessions", json={"sku": "chartgpt-lifetime"})
    assert created.status_code == 201 and created.json()["test_mode"] is True
    session_id = created.json()["id"]
    await billing.client.post(f"/test-checkout/{session_id}/pay", data={"email": "d@example.com"})
    await billing.client.post(
        f"/test-checkout/{session_id}/dispute", data={"status": "needs_response"}
    )
    await billing.client.post(f"/test-checkout/{session_id}/dispute", data={"status": "won"})
    await billing.client.post(f"/test-checkout/{session_id}/refund")

    async def refunded_and_won() -> bool:
        rows = await billing.fetch("SELECT status, dispute_status FROM orders")
        return [(r["status"], r["dispute_status"]) for r in rows] == [("refunded", "won")]

    await eventually(refunded_and_won)


async def test_buying_what_is_not_for_sale_is_a_404_problem(billing: Any) -> None:
    response = await billing.client.get("/buy/nothing-here")
    assert response.status_code == 404
    assert response.json()["type"] == "urn:tessera:problem:unknown-sku"
    too_many = await billing.client.post(
        "/v1/checkout/sessions", json={"sku": "chartgpt-lifetime", "quantity": 11}
    )
    assert too_many.status_code == 422
    assert too_many.json()["type"] == "urn:tessera:problem:quantity-not-allowed"
    bad = await billing.client.post(
        "/test-checkout/cs_test_unknown/pay", data={"email": "x@example.com"}
    )
    assert bad.status_code == 404


async def test_an_invalid_email_on_the_test_checkout_is_a_422(billing: Any) -> None:
    created = await billing.client.post("/v1/checkout/sessions", json={"sku": "chartgpt-lifetime"})
    response = await billing.client.post(
        f"/test-checkout/{created.json()['id']}/pay", data={"email": "not an email"}
    )
    assert response.status_code == 422
    assert await billing.value("SELECT count(*) FROM stripe_events") == 0


class StripeStandIn:
    """Stripe's API as the official library sees it: form-encoded POSTs, JSON objects back."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        self.app = Starlette(routes=[
            Route("/v1/checkout/sessions", self.checkout_session, methods=["POST"]),
            Route("/v1/billing_portal/sessions", self.portal_session, methods=["POST"]),
        ])  # fmt: skip

    async def checkout_session(self, request: Request) -> JSONResponse:
        form = parse_qs((await request.body()).decode())
        self.requests.append((request.url.path, form, dict(request.headers)))
        return JSONResponse({
            "id": "cs_test_from_standin", "object": "checkout.session", "mode": "payment",
            "url": "https://checkout.stripe.test/c/pay/cs_test_from_standin",
            "metadata": {"sku": form["metadata[sku]"][0]}, "payment_status": "unpaid",
        })  # fmt: skip

    async def portal_session(self, request: Request) -> JSONResponse:
        form = parse_qs((await request.body()).decode())
        self.requests.append((request.url.path, form, dict(request.headers)))
        return JSONResponse(
            {
                "id": "bps_1",
                "object": "billing_portal.session",
                "url": "https://billing.stripe.test/p/session/1",
            }
        )


@pytest.fixture
async def stripe_api() -> Any:
    standin = StripeStandIn()
    port = free_port()
    served = await LoopServer.start(standin.app, port)
    standin.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield standin
    await served.stop()


@pytest.fixture
async def live_billing(
    database_url: str, infra_settings: Any, stripe_api: Any, request: Any
) -> Any:
    start_billing = request.getfixturevalue("billing_starter")
    running = await start_billing(
        database_url,
        infra_settings,
        stripe_secret_key="sk_test_standin",
        stripe_api_base=stripe_api.url,
    )
    yield running
    await running.stop()


async def test_buy_creates_a_stripe_checkout_session_through_the_official_library(
    live_billing: Any, stripe_api: Any
) -> None:
    response = await live_billing.client.get(
        "/buy/chartgpt-lifetime?quantity=2", follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "https://checkout.stripe.test/c/pay/cs_test_from_standin"
    [(path, form, headers)] = stripe_api.requests
    assert path == "/v1/checkout/sessions"
    assert form["mode"] == ["payment"]
    assert form["customer_creation"] == ["always"]
    assert form["metadata[sku]"] == ["chartgpt-lifetime"]
    assert form["metadata[quantity]"] == ["2"]
    # the catalog allows no promotion codes, so Checkout offers none (a discount is held)
    assert "allow_promotion_codes" not in form
    assert form["line_items[0][quantity]"] == ["2"]
    assert headers["authorization"] == "Bearer sk_test_standin"
    assert headers["idempotency-key"].startswith("checkout-")
    # the stand-in for Stripe replaces the test checkout: its pages no longer exist
    assert (await live_billing.client.get("/test-checkout/cs_test_x")).status_code == 404
    async with live_billing.pool.acquire() as conn:
        await conn.execute("UPDATE catalog SET allow_promotion_codes = true")
    again = await live_billing.client.get("/buy/chartgpt-lifetime", follow_redirects=False)
    assert again.status_code == 303
    assert stripe_api.requests[-1][1]["allow_promotion_codes"] == ["true"]


async def test_the_billing_portal_opens_for_a_customer_with_a_stripe_customer(
    live_billing: Any, stripe_events: Any, stripe_api: Any, eventually: Any
) -> None:
    purchase, ids = stripe_events.purchase("portal@example.com")
    await live_billing.deliver(purchase)
    account_id = await eventually(lambda: live_billing.value("SELECT account_id FROM orders"))
    token = live_billing.token(account_id=account_id)
    response = await live_billing.client.post(
        "/v1/me/billing-portal", headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert response.json()["url"] == "https://billing.stripe.test/p/session/1"
    assert stripe_api.requests[-1][1]["customer"] == [ids["customer"]]
    stranger = live_billing.token()
    refused = await live_billing.client.post(
        "/v1/me/billing-portal", headers={"authorization": f"Bearer {stranger}"}
    )
    assert refused.status_code == 409


def test_the_signed_payload_format_matches_stripes(stripe_events: Any) -> None:
    import stripe

    from tessera.billing.checkout import stripe_shapes as shapes

    event, _ = stripe_events.purchase()
    body, header = shapes.signed(event, "whsec_x")
    assert stripe.WebhookSignature.verify_header(body.decode(), header, "whsec_x", 300)
    assert json.loads(body)["object"] == "event"
