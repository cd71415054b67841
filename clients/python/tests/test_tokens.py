"""A customer's access token verified locally against auth's JWKS: auth's own tokens, from
its token route, and defective ones signed with auth's real key (or a foreign one)."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import httpx
import jwt
import pytest
from client_stack import Stack  # type: ignore[import-not-found]
from nacl.signing import SigningKey
from tessera_client import AsyncTessera, InvalidToken, Tessera

from tessera.auth.signing_keys import ring
from tessera.shared.keys.ed25519 import Signer

pytestmark = pytest.mark.integration


def counting_jwks(fetches: list[str]) -> httpx.AsyncClient:
    """An ordinary client that notes each JWKS fetch."""

    async def note(request: httpx.Request) -> None:
        if request.url.path.endswith("/jwks.json"):
            fetches.append(str(request.url))

    return httpx.AsyncClient(event_hooks={"request": [note]})


async def test_a_customers_token_verifies_with_its_claims(stack: Stack) -> None:
    async with stack.client() as tessera:
        customer = await tessera.create_customer("token@example.com")
        token = await stack.customer_token(stack.seller, "token@example.com")
        claims = await tessera.verify_token(token)
    assert claims.customer_id == customer.id
    assert claims.seller == stack.seller.slug and claims.mode == "test"
    assert claims.expires_at > time.time()


def defective(claims: dict[str, Any], defect: str) -> dict[str, Any]:
    now = int(time.time())
    changes: dict[str, dict[str, Any]] = {
        "expired": {"iat": now - 600, "exp": now - 120},
        "issuer": {"iss": "someone-else"},
        "audience": {"aud": "another-app"},
        "other-seller": {"sel": "other-shop"},
        "live-mode": {"mod": "live"},
        "no-seller": {"sel": None},
        "no-exp": {"exp": None},
    }
    out = {**claims, **changes[defect]}
    return {k: v for k, v in out.items() if v is not None}


@pytest.mark.parametrize(
    "defect",
    ["expired", "issuer", "audience", "other-seller", "live-mode", "no-seller", "no-exp"],
)
async def test_a_defective_token_signed_by_auths_key_is_refused(stack: Stack, defect: str) -> None:
    async with stack.client() as tessera:
        await tessera.create_customer("defect@example.com")
        good = await stack.customer_token(stack.seller, "defect@example.com")
        claims = jwt.decode(good, options={"verify_signature": False})
        signer = await stack.auth.keyring.active()
        bad = signer.jws(defective(claims, defect))
        assert (await tessera.verify_token(good)).customer_id  # the control
        with pytest.raises(InvalidToken):
            await tessera.verify_token(bad)


async def test_tampered_foreign_and_malformed_tokens_are_refused(stack: Stack) -> None:
    async with stack.client() as tessera:
        await tessera.create_customer("tamper@example.com")
        good = await stack.customer_token(stack.seller, "tamper@example.com")
        header, _payload, signature = good.split(".")
        claims = jwt.decode(good, options={"verify_signature": False})
        kid = jwt.get_unverified_header(good)["kid"]
        forged = Signer(kid, SigningKey.generate()).jws(claims)  # same kid, foreign key
        other = base64.urlsafe_b64encode(b'{"acc":"x"}').decode().rstrip("=")
        for token in (f"{header}.{other}.{signature}", forged, "not.a.token", ""):
            with pytest.raises(InvalidToken):
                await tessera.verify_token(token)


async def test_another_sellers_customer_token_is_refused(stack: Stack) -> None:
    other = await stack.make_seller("rival-shop")
    async with AsyncTessera(
        other.secret_key, **{**stack.client_args(), "seller": other.slug}
    ) as theirs:
        await theirs.create_customer("rival@example.com")
        token = await stack.customer_token(other, "rival@example.com")
        assert (await theirs.verify_token(token)).seller == "rival-shop"
    async with stack.client() as ours:
        with pytest.raises(InvalidToken, match="another seller"):
            await ours.verify_token(token)


async def test_a_rotated_key_is_fetched_once_on_its_new_kid(stack: Stack) -> None:
    fetches: list[str] = []
    async with counting_jwks(fetches) as http, stack.client(http=http) as tessera:
        await tessera.create_customer("rotate@example.com")
        old = await stack.customer_token(stack.seller, "rotate@example.com")
        await tessera.verify_token(old)
        await tessera.verify_token(old)  # cached: no fetch
        new_kid = await ring.rotate(stack.auth.pool, stack.auth.sealer)
        new = await stack.customer_token(stack.seller, "rotate@example.com")
        tessera.jwks.min_refresh = 0  # the test does not wait the 10 s between fetches
        assert jwt.get_unverified_header(new)["kid"] == new_kid
        await tessera.verify_token(new)
        await tessera.verify_token(old)  # still published
    assert len(fetches) == 2


async def test_concurrent_first_verifications_fetch_the_jwks_once(stack: Stack) -> None:
    fetches: list[str] = []
    async with counting_jwks(fetches) as http, stack.client(http=http) as tessera:
        await tessera.create_customer("many@example.com")
        token = await stack.customer_token(stack.seller, "many@example.com")
        results = await asyncio.gather(*(tessera.verify_token(token) for _ in range(30)))
        # Made-up kids within the refresh interval fetch nothing more.
        unknown = Signer("made-up", SigningKey.generate()).jws({"sub": "x"})
        refused = await asyncio.gather(
            *(tessera.verify_token(unknown) for _ in range(30)), return_exceptions=True
        )
    assert len({r.customer_id for r in results}) == 1
    assert all(isinstance(r, InvalidToken) for r in refused)
    assert len(fetches) == 1


async def test_the_sync_client_verifies_from_threads(stack: Stack) -> None:
    async with stack.client() as tessera:
        customer = await tessera.create_customer("sync@example.com")
    token = await stack.customer_token(stack.seller, "sync@example.com")

    def verify_in_threads() -> set[Any]:
        with Tessera(stack.seller.secret_key, **stack.client_args()) as sync:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(8) as pool:
                return {c.customer_id for c in pool.map(sync.verify_token, [token] * 16)}

    # The sync client blocks; the services run in this loop, so it runs in a thread.
    assert await asyncio.to_thread(verify_in_threads) == {customer.id}
