"""The admin portal's held orders: a signed checkout that does not match the catalog is
listed with its reason; an admin approves it (the buyer is provisioned through the normal
path, and hears about it by mail) or rejects it, each with a reason; a second decision is
refused; nobody else learns that the pages exist."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

import httpx

from tessera.billing.checkout import stripe_shapes as shapes
from tessera.billing.settings import DEV_WEBHOOK_SECRET

ADMIN = "operator@example.com"
HELD_LINK = re.compile(r'href="(/admin/held-orders/[0-9a-f\-]{36})"')


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, html[:2000]
    return found.group(1)


async def admin_browser(stack: Any) -> httpx.AsyncClient:
    await stack.buy(ADMIN)
    client: httpx.AsyncClient = stack.browser()
    await stack.land(client, await stack.welcome_link(ADMIN))
    return client


async def tampered_checkout(stack: Any, email: str) -> str:
    """A correctly signed `checkout.session.completed` for 50 licenses at 1 cent, in xxx."""
    session = shapes.checkout_session(
        session_id=shapes.stripe_id("cs"), email=email, sku="chartgpt-lifetime", quantity=1,
        amount_total=1, currency="xxx", customer=shapes.stripe_id("cus"),
        payment_intent=shapes.stripe_id("pi"),
    )  # fmt: skip
    session["metadata"]["quantity"] = "50"
    event = shapes.event("checkout.session.completed", session)
    body, header = shapes.signed(event, DEV_WEBHOOK_SECRET)
    async with httpx.AsyncClient(base_url=stack.billing_url, timeout=10) as stripe:
        response = await stripe.post(
            "/webhooks/stripe",
            content=body,
            headers={"stripe-signature": header, "content-type": "application/json"},
        )
    assert response.status_code == 200, response.text
    return str(session["id"])


async def held_order_path(admin: httpx.AsyncClient, email: str, timeout: float = 15) -> str:
    """The held order's page, once billing has applied the event and lists it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        listing = await admin.get("/admin/held-orders")
        assert listing.status_code == 200, listing.text
        for row in listing.text.split("<tr>"):
            if email in row:
                found = HELD_LINK.search(row)
                assert found, row
                assert "quantity 50 is outside 1 to 10" in row
                return found.group(1)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no held order for {email}")
        await asyncio.sleep(0.2)


async def decide(admin: httpx.AsyncClient, path: str, decision: str, reason: str) -> httpx.Response:
    page = await admin.get(path)
    assert page.status_code == 200, page.text
    return await admin.post(
        f"{path}/{decision}", data={"csrf": csrf_of(page.text), "reason": reason}
    )


async def test_an_admin_approves_a_held_order_once_and_the_buyer_is_provisioned(
    stack: Any,
) -> None:
    admin = await admin_browser(stack)
    email = f"held-{secrets.token_hex(4)}@example.com"
    await tampered_checkout(stack, email)
    path = await held_order_path(admin, email)
    page = await admin.get(path)
    assert "Why it was held" in page.text and "0.01 XXX" in page.text
    assert f"{path}/approve" in page.text and f"{path}/reject" in page.text

    no_reason = await decide(admin, path, "approve", "   ")
    assert no_reason.status_code == 400 and "A reason is required" in no_reason.text

    approved = await decide(admin, path, "approve", "agreed by phone")
    assert approved.status_code == 303
    assert approved.headers["location"] == f"{path}?done=approve"
    after = await admin.get(approved.headers["location"])
    assert "Order approved" in after.text and "agreed by phone" in after.text
    assert f"{path}/approve" not in after.text  # no forms once decided
    # provisioned through the normal path: the buyer's account exists and is welcomed
    assert await stack.welcome_link(email)

    again = await admin.post(
        f"{path}/approve", data={"csrf": csrf_of(after.text), "reason": "double click"}
    )
    assert again.status_code == 409 and "not held" in again.text
    approved_list = await admin.get("/admin/held-orders", params={"status": "paid"})
    assert email in approved_list.text
    assert email not in (await admin.get("/admin/held-orders")).text


async def test_an_admin_rejects_a_held_order_and_nobody_else_sees_the_pages(
    stack: Any,
) -> None:
    admin = await admin_browser(stack)
    email = f"held-{secrets.token_hex(4)}@example.com"
    await tampered_checkout(stack, email)
    path = await held_order_path(admin, email)
    rejected = await decide(admin, path, "reject", "tampered session")
    assert rejected.status_code == 303
    after = await admin.get(rejected.headers["location"])
    assert "Order rejected" in after.text and "tampered session" in after.text
    listed = await admin.get("/admin/held-orders", params={"status": "rejected"})
    assert email in listed.text
    unknown = await admin.post(f"{path}/refund", data={"csrf": csrf_of(after.text), "reason": "x"})
    assert unknown.status_code == 404

    anonymous = stack.browser()
    assert (await anonymous.get("/admin/held-orders")).status_code == 404
    assert (await anonymous.post(f"{path}/approve", data={"reason": "x"})).status_code == 404
    customer_email = f"customer-{secrets.token_hex(4)}@example.com"
    await stack.buy(customer_email)
    customer = stack.browser()
    await stack.land(customer, await stack.welcome_link(customer_email))
    assert (await customer.get("/admin/held-orders")).status_code == 404
    assert (await customer.get(path)).status_code == 404
    bad_filter = await admin.get("/admin/held-orders", params={"status": "everything"})
    assert bad_filter.status_code in (400, 422)


async def signed(stack: Any, event: dict[str, Any]) -> None:
    body, header = shapes.signed(event, DEV_WEBHOOK_SECRET)
    async with httpx.AsyncClient(base_url=stack.billing_url, timeout=10) as stripe:
        response = await stripe.post(
            "/webhooks/stripe",
            content=body,
            headers={"stripe-signature": header, "content-type": "application/json"},
        )
    assert response.status_code == 200, response.text


async def test_held_orders_refunded_or_failed_before_review_can_be_listed(stack: Any) -> None:
    admin = await admin_browser(stack)
    refunded_email = f"held-{secrets.token_hex(4)}@example.com"
    failed_email = f"held-{secrets.token_hex(4)}@example.com"
    customer, intent = shapes.stripe_id("cus"), shapes.stripe_id("pi")
    session = shapes.checkout_session(
        session_id=shapes.stripe_id("cs"), email=refunded_email, sku="chartgpt-lifetime",
        quantity=1, amount_total=1, currency="usd", customer=customer, payment_intent=intent,
    )  # fmt: skip
    await signed(stack, shapes.event("checkout.session.completed", session))
    charge = shapes.charge(
        charge_id=shapes.stripe_id("ch"), amount=1, currency="usd", customer=customer,
        payment_intent=intent, amount_refunded=1,
    )  # fmt: skip
    await signed(stack, shapes.event("charge.refunded", charge))
    unpaid = shapes.checkout_session(
        session_id=shapes.stripe_id("cs"), email=failed_email, sku="chartgpt-lifetime",
        quantity=1, amount_total=1, currency="usd", customer=shapes.stripe_id("cus"),
        payment_intent=shapes.stripe_id("pi"), payment_status="unpaid",
    )  # fmt: skip
    await signed(stack, shapes.event("checkout.session.completed", unpaid))
    await signed(stack, shapes.event("checkout.session.async_payment_failed", unpaid))
    for status, email in (("refunded", refunded_email), ("payment_failed", failed_email)):
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            listing = await admin.get("/admin/held-orders", params={"status": status})
            assert listing.status_code == 200, (status, listing.text[:500])
            if email in listing.text:
                break
            assert asyncio.get_running_loop().time() < deadline, f"{email} never listed"
            await asyncio.sleep(0.2)
        assert f'<option value="{status}" selected>' in listing.text
