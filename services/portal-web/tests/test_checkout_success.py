"""`/checkout/success`, where Stripe sends a buyer after paying (the session's success_url):
payment received, where the mail went (masked: anyone may hold the URL), and the license
once issued, shown to its signed-in owner only; without JavaScript it refreshes itself."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

import httpx
import pytest

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
