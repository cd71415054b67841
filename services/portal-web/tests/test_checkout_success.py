"""`/checkout/success`, where Stripe sends a buyer after paying (the session's success_url):
payment received, where the mail went (masked: anyone may hold the URL), and the license
once issued, shown to its signed-in owner only; without JavaScript it refreshes itself."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from typing import Any

import httpx
import pytest

from .test_admin_held_orders import signed

pytestmark = pytest.mark.integration

KEY = re.compile(r'<code class="key" id="key-[^"]+">([0-9A-Z\-]{29})</code>')
REFRESH = '<meta http-equiv="refresh"'


async def start_checkout(stack: Any) -> str:
    """A checkout on billing's test checkout, not paid yet: its session id."""
    async with httpx.AsyncClient(base_url=stack.billing_url, timeout=20) as shop:
        buy = await shop.get("/buy/chartgpt-lifetime")
        assert buy.status_code == 303, buy.text
        return str(buy.headers["location"].rsplit("/", 1)[1])


async def pay(stack: Any, session_id: str, email: str) -> None:
    async with httpx.AsyncClient(base_url=stack.billing_url, timeout=20) as shop:
        paid = await shop.post(f"/test-checkout/{session_id}/pay", data={"email": email})
        assert paid.status_code == 303, paid.text


async def page_until(client: httpx.AsyncClient, url: str, text: str, timeout: float = 20) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        page = await client.get(url)
        assert page.status_code == 200, page.text
        if text in page.text:
            return page.text
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{text!r} never appeared:\n{page.text[:3000]}")
        await asyncio.sleep(0.2)


async def test_the_success_page_follows_the_payment_to_the_license(stack: Any) -> None:
    email = f"buyer-{secrets.token_hex(4)}@example.com"
    session_id = await start_checkout(stack)
    url = f"/checkout/success?session_id={session_id}"
    anonymous = stack.browser()

    # Before Stripe's webhook: waiting, and refreshing itself (with and without JavaScript).
    waiting = await anonymous.get(url)
    assert waiting.status_code == 200
    assert "Confirming your payment" in waiting.text
    assert REFRESH in waiting.text and 'hx-trigger="every 3s"' in waiting.text

    # Paid: the address the welcome mail went to, masked; no license key to a stranger.
    await pay(stack, session_id, email)
    paid = await page_until(anonymous, url, "We sent a welcome email")
    assert "Payment received" in paid
    assert "b•••@e•••.com" in paid
    assert email not in paid and email.split("@")[0] not in paid
    assert not KEY.search(paid)
    assert "Sign in with the link in that email" in paid
    assert REFRESH not in paid  # nothing more to wait for without signing in

    # The owner, signed in with the welcome link, sees the license appear on the same page.
    owner = stack.browser()
    await stack.land(owner, await stack.welcome_link(email))
    mine = await page_until(owner, url, "License key")
    [key] = KEY.findall(mine)
    assert key in (await stack.licenses(owner))
    assert REFRESH not in mine

    # Someone else, signed in to another account, does not see it.
    other_email = f"other-{secrets.token_hex(4)}@example.com"
    await stack.buy(other_email)
    other = stack.browser()
    await stack.land(other, await stack.welcome_link(other_email))
    theirs = await other.get(url)
    assert theirs.status_code == 200
    assert key not in theirs.text and not KEY.search(theirs.text)
    assert "belongs to another account" in theirs.text
    assert REFRESH not in theirs.text


async def test_a_link_without_a_checkout_is_a_404_page(stack: Any) -> None:
    client = stack.browser()
    for query in ("", "?session_id=", "?session_id=../../admin", "?session_id=cs_live_%3Cb%3E"):
        page = await client.get(f"/checkout/success{query}")
        assert page.status_code == 404, query
        assert "No such checkout" in page.text
        assert page.headers["content-type"].startswith("text/html")


async def test_billing_tells_a_checkout_outcome_without_the_address(stack: Any) -> None:
    async with httpx.AsyncClient(base_url=stack.billing_url, timeout=20) as billing:
        unknown = await billing.get("/v1/checkout/sessions/cs_test_" + "a" * 24)
        bad = await billing.get("/v1/checkout/sessions/not-a-session")
    assert unknown.status_code == 200
    assert unknown.json()["state"] == "pending"
    assert unknown.json()["email_hint"] is None
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


# --- each state the order can be in has its own words; the page stops polling once nothing
# more is going to happen by itself -------------------------------------------------------

PAID_LINE = "Payment received"


async def signed_checkout_event(
    stack: Any,
    event_type: str,
    *,
    session_id: str,
    email: str,
    payment_intent: str,
    payment_status: str = "paid",
    quantity: int = 1,
    amount_total: int = 14900,
) -> None:
    from tessera.billing.checkout import stripe_shapes as shapes

    session = shapes.checkout_session(
        session_id=session_id, email=email, sku="chartgpt-lifetime", quantity=quantity,
        amount_total=amount_total, currency="usd", customer="cus_test_" + secrets.token_hex(8),
        payment_intent=payment_intent, payment_status=payment_status,
    )  # fmt: skip
    await signed(stack, shapes.event(event_type, session))


def new_session() -> tuple[str, str, str]:
    return (
        "cs_test_" + secrets.token_hex(12),
        "pi_test_" + secrets.token_hex(12),
        f"buyer-{secrets.token_hex(4)}@example.com",
    )


async def test_a_payment_still_processing_says_so_and_polls_slowly(stack: Any) -> None:
    session_id, intent, email = new_session()
    await signed_checkout_event(
        stack, "checkout.session.completed", session_id=session_id, email=email,
        payment_intent=intent, payment_status="unpaid",
    )  # fmt: skip
    page = await page_until(
        stack.browser(), f"/checkout/success?session_id={session_id}", "is processing"
    )
    assert "<title>Payment processing" in page
    assert PAID_LINE not in page and "is confirmed" not in page
    assert 'hx-trigger="every 30s"' in page and '<meta http-equiv="refresh" content="30">' in page


async def test_a_failed_payment_says_so_and_stops_polling(stack: Any) -> None:
    session_id, intent, email = new_session()
    for event_type in ("checkout.session.completed", "checkout.session.async_payment_failed"):
        await signed_checkout_event(
            stack, event_type, session_id=session_id, email=email, payment_intent=intent,
            payment_status="unpaid",
        )  # fmt: skip
    page = await page_until(
        stack.browser(), f"/checkout/success?session_id={session_id}", "Your payment failed"
    )
    assert "no license was issued" in page
    assert PAID_LINE not in page and "is confirmed" not in page
    assert REFRESH not in page and "hx-trigger" not in page


async def test_a_held_order_is_under_review_and_the_page_stops_polling(stack: Any) -> None:
    session_id, intent, email = new_session()
    await signed_checkout_event(
        stack, "checkout.session.completed", session_id=session_id, email=email,
        payment_intent=intent, quantity=50,
    )  # fmt: skip
    page = await page_until(
        stack.browser(), f"/checkout/success?session_id={session_id}", "under review"
    )
    assert "We'll email you at" in page and "b•••@e•••.com" in page
    assert PAID_LINE not in page and "is confirmed" not in page
    assert REFRESH not in page and "hx-trigger" not in page


async def test_a_rejected_order_says_so_and_the_page_stops_polling(stack: Any) -> None:
    from .test_admin_held_orders import admin_browser, decide, tampered_checkout

    admin = await admin_browser(stack)
    email = f"held-{secrets.token_hex(4)}@example.com"
    session_id = await tampered_checkout(stack, email)
    buyer = stack.browser()
    url = f"/checkout/success?session_id={session_id}"
    await page_until(buyer, url, "under review")
    listing = await admin.get("/admin/held-orders")
    [path] = [
        found.group(1)
        for row in listing.text.split("<tr>")
        if email in row and (found := re.search(r'href="(/admin/held-orders/[0-9a-f\-]{36})"', row))
    ]
    assert (await decide(admin, path, "reject", "tampered session")).status_code == 303
    page = await page_until(buyer, url, "We could not accept this order")
    assert "no license was issued" in page
    assert PAID_LINE not in page and "is confirmed" not in page
    assert REFRESH not in page and "hx-trigger" not in page


async def test_a_paid_order_still_says_payment_received(stack: Any) -> None:
    session_id, intent, email = new_session()
    await signed_checkout_event(
        stack, "checkout.session.completed", session_id=session_id, email=email,
        payment_intent=intent,
    )  # fmt: skip
    page = await page_until(
        stack.browser(), f"/checkout/success?session_id={session_id}", "We sent a welcome email"
    )
    assert "<title>Payment received" in page and "is confirmed" in page
    assert REFRESH not in page


# --- a subscription checkout: no order, the subscription (or its trial) started -----------


def subscription_checkout(
    session_id: str, email: str, status: str, *, trial_days: int = 0
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stripe's `checkout.session.completed` of a subscription checkout made by billing for
    the home seller's tier `platform`, and the subscription's `customer.subscription.created`."""
    from tessera.billing.checkout import stripe_shapes as shapes
    from tessera.shared.sellers import HOME_LIVE

    now = int(time.time())
    subscription, customer = "sub_test_" + secrets.token_hex(8), "cus_test_" + secrets.token_hex(8)
    metadata = {"tessera_seller": str(HOME_LIVE.seller_id), "tessera_mode": "live",
                "tessera_tier": "platform", "tessera_interval": "month",
                "tessera_account": "platform"}  # fmt: skip
    session = shapes.checkout_session(
        session_id=session_id, email=email, sku="", quantity=1, amount_total=0,
        currency="usd", customer=customer, payment_intent="",
    )  # fmt: skip
    session |= {"mode": "subscription", "subscription": subscription, "payment_intent": None,
                "metadata": metadata}  # fmt: skip
    trial_end = now + trial_days * 86400 if trial_days else None
    snapshot = {
        "id": subscription, "object": "subscription", "status": status, "customer": customer,
        "start_date": now, "trial_end": trial_end, "cancel_at_period_end": False,
        "metadata": metadata,
        "items": {"data": [{"id": "si_" + secrets.token_hex(6),
                            "price": {"id": "price_elsewhere", "recurring": {"interval": "month"}},
                            "current_period_start": now,
                            "current_period_end": trial_end or now + 30 * 86400}]},
    }  # fmt: skip
    return (
        shapes.event("checkout.session.completed", session),
        shapes.event("customer.subscription.created", snapshot),
    )


async def test_a_subscription_checkout_says_the_trial_started_and_stops_polling(
    stack: Any,
) -> None:
    session_id, _, email = new_session()
    completed, created = subscription_checkout(session_id, email, "trialing", trial_days=14)
    url = f"/checkout/success?session_id={session_id}"
    browser = stack.browser()
    # The checkout first (twice): a subscription, its status not known yet; still polling.
    await signed(stack, completed)
    await signed(stack, completed)
    waiting = await page_until(browser, url, "Confirming your subscription")
    assert "<title>Confirming your subscription" in waiting
    assert 'hx-trigger="every 3s"' in waiting and REFRESH in waiting
    # Then the subscription's own event: the trial has started, and nothing more to wait for.
    await signed(stack, created)
    page = await page_until(browser, url, "Your trial has started")
    assert "<title>Trial started" in page
    trial_end = time.strftime("%Y-%m-%d", time.gmtime(created["data"]["object"]["trial_end"]))
    assert f"until <strong>{trial_end}" in page
    assert "<strong>platform</strong> subscription" in page
    assert "b•••@e•••.com" in page and email not in page
    assert PAID_LINE not in page and "Confirming" not in page
    assert REFRESH not in page and "hx-trigger" not in page


async def test_a_subscription_without_trial_says_it_started_whatever_the_order(
    stack: Any,
) -> None:
    session_id, _, email = new_session()
    completed, created = subscription_checkout(session_id, email, "active")
    url = f"/checkout/success?session_id={session_id}"
    # The subscription's event before its checkout's: still only "confirming your payment".
    await signed(stack, created)
    early = await stack.browser().get(url)
    assert "Confirming your payment" in early.text and 'hx-trigger="every 3s"' in early.text
    await signed(stack, completed)
    page = await page_until(stack.browser(), url, "Subscription started")
    assert "<title>Subscription started" in page and "billed every month" in page
    assert "trial" not in page.lower()
    assert REFRESH not in page and "hx-trigger" not in page


@pytest.mark.parametrize(
    ("status", "words", "poll"),
    [
        ("incomplete", "Your payment is processing", 'hx-trigger="every 30s"'),
        ("past_due", "Your subscription needs a payment", None),
        ("incomplete_expired", "This subscription has ended", None),
    ],
)
async def test_each_subscription_state_has_its_words(
    stack: Any, status: str, words: str, poll: str | None
) -> None:
    session_id, _, email = new_session()
    for event in subscription_checkout(session_id, email, status):
        await signed(stack, event)
    page = await page_until(stack.browser(), f"/checkout/success?session_id={session_id}", words)
    assert "Subscription started" not in page and PAID_LINE not in page
    if poll is None:
        assert REFRESH not in page and "hx-trigger" not in page
    else:
        assert poll in page
