"""The seller dashboard's first slice without JavaScript (docs/portal.md, "Seller"), on the
real stack: a developer signs a seller up at auth, signs in to the portal as anyone does,
sees their sellers and only theirs, the onboarding checklist in test and in live mode, and
creates, rotates and revokes keys through forms (CSRF on each), the secret shown once. A
member of another seller and a customer get the plain 404 page; a forged form changes
nothing."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

import httpx
import pytest

from .test_customer import csrf_of, new_email, signed_in_buyer

pytestmark = pytest.mark.integration

SIGN_UP_LINK = re.compile(r"/sellers/sign-up/link\?token=([A-Za-z0-9_\-]+)")
SECRET = re.compile(r'id="secret-key" class="secret">(sk_(?:test|live)_[A-Za-z0-9]+)<')


async def sign_up_seller(stack: Any, email: str, slug: str, name: str) -> None:
    """A developer signs `slug` up at auth (as Tessera's site does) and verifies the link."""
    browser = secrets.token_urlsafe(24)
    async with httpx.AsyncClient(base_url=stack.auth_url, timeout=20) as auth:
        asked = await auth.post(
            "/v1/sellers/sign-up",
            json={"email": email, "name": name, "slug": slug, "browser": browser},
        )
        assert asked.status_code == 202, asked.text
        text = await stack.mailbox.wait_for(email, f"Create {name}")
        token = SIGN_UP_LINK.search(text)
        assert token, text
        verified = await auth.post(
            "/v1/sellers/sign-up/verify", json={"token": token.group(1), "browser": browser}
        )
        assert verified.status_code == 200, verified.text


async def signed_in_owner(stack: Any, slug: str, name: str) -> tuple[httpx.AsyncClient, str]:
    email = new_email()
    await sign_up_seller(stack, email, slug, name)
    client = stack.browser()
    await stack.sign_in(client, email)
    return client, email


async def test_a_member_manages_its_seller_s_keys_without_javascript(stack: Any) -> None:
    owner, _ = await signed_in_owner(stack, "acme-dash", "Acme Dash")
    await signed_in_owner(stack, "other-dash", "Other Dash")

    listed = await owner.get("/seller")
    assert listed.status_code == 200
    assert "Acme Dash" in listed.text and "other-dash" not in listed.text
    assert "unsafe-inline" not in listed.headers["content-security-policy"]
    for path in ("/seller/other-dash", "/seller/other-dash/keys", "/seller/nope", "/seller/A_B"):
        assert (await owner.get(path)).status_code == 404, path

    test_view = await owner.get("/seller/acme-dash")
    assert test_view.status_code == 200
    assert "TEST MODE" in test_view.text and "LIVE MODE" not in test_view.text
    assert test_view.text.count("not yet</span>") == 5  # nothing done yet, plan included
    live_view = await owner.get("/seller/acme-dash", params={"mode": "live"})
    assert "LIVE MODE" in live_view.text and "TEST MODE" not in live_view.text
    assert "platform plan is active" in live_view.text  # no plan: live is refused, said so
    assert (await owner.get("/seller/acme-dash", params={"mode": "prod"})).status_code == 400

    keys_page = await owner.get("/seller/acme-dash/keys")
    assert "No test keys yet" in keys_page.text and "No live keys yet" in keys_page.text
    csrf = csrf_of(keys_page.text)
    forged = await owner.post("/seller/acme-dash/keys", data={"name": "x", "mode": "test"})
    assert forged.status_code == 403
    made = await owner.post(
        "/seller/acme-dash/keys", data={"name": "staging", "mode": "test", "csrf": csrf}
    )
    assert made.status_code == 200, made.text
    secret = SECRET.search(made.text)
    assert secret and secret.group(1).startswith("sk_test_")
    assert "only time it is shown" in made.text and made.headers["cache-control"] == "no-store"
    shown = await owner.get("/seller/acme-dash/keys")
    assert secret.group(1) not in shown.text  # once, never again
    assert f"sk_test_…{secret.group(1)[-4:]}" in shown.text and "never" in shown.text

    overview = await owner.get("/seller/acme-dash")
    assert overview.text.count("not yet</span>") == 4  # the first key is done

    pair = re.search(r"/seller/acme-dash/keys/([0-9a-f-]{36})/rotate", shown.text)
    assert pair
    rotated = await owner.post(
        f"/seller/acme-dash/keys/{pair.group(1)}/rotate", data={"overlap": "3600", "csrf": csrf}
    )
    assert rotated.status_code == 200
    second = SECRET.search(rotated.text)
    assert second and second.group(1) != secret.group(1) and "1 hour" in rotated.text
    odd = await owner.post(
        f"/seller/acme-dash/keys/{pair.group(1)}/rotate", data={"overlap": "5", "csrf": csrf}
    )
    assert odd.status_code == 404

    revoked = await owner.post(
        f"/seller/acme-dash/keys/{pair.group(1)}/revoke", data={"csrf": csrf}
    )
    assert revoked.status_code == 303
    after = await owner.get(revoked.headers["location"])
    assert "was revoked" in after.text and "status-revoked" in after.text

    # The rotated secret works at billing (once its record reaches billing's key book):
    # the dashboard made a real key.
    async with httpx.AsyncClient(base_url=stack.billing_url) as billing:
        for _ in range(100):
            products = await billing.get(
                "/v1/products", headers={"authorization": f"Bearer {second.group(1)}"}
            )
            if products.status_code == 200:
                break
            await asyncio.sleep(0.1)
    assert products.status_code == 200, products.text


async def test_a_customer_and_a_stranger_never_see_seller_pages(stack: Any) -> None:
    owner, _ = await signed_in_owner(stack, "kept-dash", "Kept Dash")
    keys_page = await owner.get("/seller/kept-dash/keys")
    buyer, _ = await signed_in_buyer(stack)
    csrf = csrf_of((await buyer.get("/licenses")).text)
    for path in ("/seller", "/seller/kept-dash", "/seller/kept-dash/keys"):
        assert (await buyer.get(path)).status_code == 404, path
    posted = await buyer.post(
        "/seller/kept-dash/keys", data={"name": "mine", "mode": "test", "csrf": csrf}
    )
    assert posted.status_code == 404
    anonymous = stack.browser()
    asked = await anonymous.get("/seller/kept-dash")
    assert asked.status_code == 303 and "next=%2Fseller%2Fkept-dash" in asked.headers["location"]
    assert "No test keys yet" in (await owner.get("/seller/kept-dash/keys")).text
    assert keys_page.status_code == 200
