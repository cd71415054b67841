"""A publishable key starts a customer's sign-in for its seller and mode at
`POST /v1/magic-links`; the token that comes of it names that seller and mode. A secret
key, a revoked key or a forged one starts nothing. Real Postgres, Redis, NATS and SMTP."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
import pytest
from test_api_keys import new_pair  # type: ignore[import-not-found]
from test_sellers import bearer, open_seller  # type: ignore[import-not-found]

from tessera.shared.sellers import Tenant

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
        owner, _ = await open_seller(h, "pk-refuse")
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
