"""A publishable key starts a customer's sign-in for its seller and mode at
`POST /v1/magic-links`; the token that comes of it names that seller and mode. A secret
key, a revoked key or a forged one starts nothing. The mailed code finishes the sign-in
with the same key (in its mode, test included); a slug alone is the seller's live sign-in
only. Real Postgres, Redis, NATS and SMTP."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
import pytest
from test_api_keys import new_pair  # type: ignore[import-not-found]
from test_sellers import bearer, open_seller  # type: ignore[import-not-found]

from tessera.shared.sellers import Mode, Tenant

pytestmark = pytest.mark.integration


async def test_a_publishable_test_key_signs_a_customer_in_at_its_seller_in_test_mode(
    harness: Any,
) -> None:
    async with harness() as h:
        await asyncio.wait_for(h.auth.key_book.wait_ready(), 20)
        owner, seller_id = await open_seller(h, "pk-shop")
        pair = await new_pair(h, owner, "pk-shop", "web", "test")
        email, browser = h.new_email(), h.new_browser()
        asked = await h.client.post(
            "/v1/magic-links",
            json={"email": email, "browser": browser},
            headers=bearer(pair["publishable"]["key"]),
        )
        message = await h.mailbox.wait_for(email, "Sign in to Acme")
        verified = await h.client.post(
            "/v1/magic-links/verify", json={"token": h.link_token(message), "browser": browser}
        )
        assert verified.status_code == 200, verified.text
        token = await h.access_token(verified.json()["session_id"])
        principal = await h.auth.token_verifier.verify(token)
        claims = jwt.decode(token, options={"verify_signature": False})
        modes = await h.auth.pool.fetch("SELECT mode FROM users WHERE lower(email) = $1", email)
    assert asked.status_code == 202
    assert claims["sel"] == "pk-shop" and claims["mod"] == "test"
    assert principal.tenant == Tenant(seller_id, "test")
    assert [r["mode"] for r in modes] == ["test"]


async def test_only_a_valid_publishable_key_starts_a_seller_s_sign_in(harness: Any) -> None:
    async with harness() as h:
        await asyncio.wait_for(h.auth.key_book.wait_ready(), 20)
        owner, seller_id = await open_seller(h, "pk-refuse")
        await h.pay_plan(seller_id)
        pair = await new_pair(h, owner, "pk-refuse", "web", "live")
        revoked = await new_pair(h, owner, "pk-refuse", "old", "live")
        gone = await h.client.delete(
            f"/v1/sellers/pk-refuse/keys/{revoked['pair_id']}", headers=bearer(owner)
        )
        assert gone.status_code == 204
        body = {"email": h.new_email(), "browser": h.new_browser()}
        answers = {
            name: await h.client.post("/v1/magic-links", json=body, headers=bearer(key))
            for name, key in {
                "secret": pair["secret"]["key"],
                "revoked": revoked["publishable"]["key"],
                "forged": "pk_live_" + "A" * 38,
            }.items()
        }
        queued = await h.auth.pool.fetchval(
            "SELECT count(*) FROM email_outbox WHERE recipient = $1", body["email"]
        )
    assert answers["secret"].status_code == 403
    assert answers["revoked"].status_code == answers["forged"].status_code == 401
    assert queued == 0


# --- finishing with the mailed code ------------------------------------------------------


async def code_sign_in(
    h: Any, key: str, email: str, *, seller: str | None = None, with_key: bool = True
) -> tuple[Any, Any]:
    """Start a sign-in with `key`, then finish it with the mailed code (sending the key
    again unless `with_key` is false, and `seller` if given): the start and the finish."""
    asked = await h.client.post(
        "/v1/magic-links", json={"email": email, "browser": h.new_browser()}, headers=bearer(key)
    )
    assert asked.status_code == 202, asked.text
    code = h.one_time_code(await h.mailbox.wait_for(email, "Sign in to"))
    body: dict[str, Any] = {"email": email, "code": code, "browser": h.new_browser()}
    if seller is not None:
        body["seller"] = seller
    headers = bearer(key) if with_key else {}
    return asked, await h.client.post("/v1/magic-links/verify", json=body, headers=headers)


@pytest.mark.parametrize("mode", ["test", "live"])
async def test_the_code_finishes_a_sign_in_started_with_a_publishable_key(
    harness: Any, mode: Mode
) -> None:
    async with harness() as h:
        await asyncio.wait_for(h.auth.key_book.wait_ready(), 20)
        owner, seller_id = await open_seller(h, f"code-{mode}")
        await h.pay_plan(seller_id)
        pk = (await new_pair(h, owner, f"code-{mode}", "web", mode))["publishable"]["key"]
        email, same_slug = h.new_email(), h.new_email()
        _, verified = await code_sign_in(h, pk, email)
        # The key's own slug beside it is no contradiction.
        _, with_slug = await code_sign_in(h, pk, same_slug, seller=f"code-{mode}")
        assert verified.status_code == 200, verified.text
        assert with_slug.status_code == 200, with_slug.text
        token = await h.access_token(verified.json()["session_id"])
        principal = await h.auth.token_verifier.verify(token)
        users = await h.auth.pool.fetch(
            "SELECT seller_id, mode FROM users WHERE lower(email) = $1", email
        )
    assert principal.tenant == Tenant(seller_id, mode)
    assert [(r["seller_id"], r["mode"]) for r in users] == [(seller_id, mode)]


async def test_without_the_key_a_test_mode_code_does_not_sign_in_live(harness: Any) -> None:
    """The slug alone means the seller's live sign-in page: a code mailed for a test-mode
    start is not found there, and no live customer is made."""
    async with harness() as h:
        await asyncio.wait_for(h.auth.key_book.wait_ready(), 20)
        owner, seller_id = await open_seller(h, "code-nokey")
        pk = (await new_pair(h, owner, "code-nokey", "web", "test"))["publishable"]["key"]
        email = h.new_email()
        _, slug_only = await code_sign_in(h, pk, email, seller="code-nokey", with_key=False)
        live = await h.auth.pool.fetchval(
            "SELECT count(*) FROM users WHERE seller_id = $1 AND mode = 'live'", seller_id
        )
    assert slug_only.status_code == 401
    assert slug_only.json()["type"] == "urn:tessera:problem:sign-in-failed"
    assert live == 0


async def test_a_key_and_another_seller_s_slug_or_a_secret_key_are_refused(harness: Any) -> None:
    async with harness() as h:
        await asyncio.wait_for(h.auth.key_book.wait_ready(), 20)
        owner, _ = await open_seller(h, "code-mine")
        await open_seller(h, "code-other")
        pair = await new_pair(h, owner, "code-mine", "web", "test")
        email = h.new_email()
        _, other_slug = await code_sign_in(
            h, pair["publishable"]["key"], email, seller="code-other"
        )
        code = h.one_time_code(await h.mailbox.wait_for(email, "Sign in to"))
        secret = await h.client.post(
            "/v1/magic-links/verify",
            json={"email": email, "code": code, "browser": h.new_browser()},
            headers=bearer(pair["secret"]["key"]),
        )
        # Neither refusal spent the code: the right key still finishes the sign-in.
        finished = await h.client.post(
            "/v1/magic-links/verify",
            json={"email": email, "code": code, "browser": h.new_browser()},
            headers=bearer(pair["publishable"]["key"]),
        )
    assert other_slug.status_code == 422
    assert other_slug.json()["type"] == "urn:tessera:problem:key-and-seller"
    assert secret.status_code == 403
    assert finished.status_code == 200, finished.text
