"""Sessions (list, revoke, revoke-all, disable) and access tokens (claims, JWKS, rotation)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from tessera.auth.secrets import sealer_of
from tessera.auth.signing_keys import ring
from tessera.shared.directory import SellerBook, follow_with_own_connection
from tessera.shared.keys import SealingError
from tessera.shared.sellers import HOME_LIVE, HOME_SELLER_ID
from tessera.shared.tokens import AccessTokenVerifier, JwksCache, Unauthorized

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def verifier_for(h: Any) -> AccessTokenVerifier:
    """The shared package's verifier, as another service runs it: fetching auth's JWKS, and
    resolving sellers through its own directory, followed from JetStream."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=h.app), base_url="https://a")
    jwks = JwksCache("https://a/.well-known/jwks.json", client=client, min_refresh=0)
    book = SellerBook()
    follow = follow_with_own_connection(
        book.follower, str(h.auth.infra.nats_url), h.auth.namespace, "test-verifier"
    )
    h.auth.tasks.append(asyncio.create_task(follow))  # ends with auth's lifespan
    deadline = asyncio.get_running_loop().time() + 10
    while book.by_id(HOME_SELLER_ID) is None:
        assert asyncio.get_running_loop().time() < deadline, "the directory never arrived"
        await asyncio.sleep(0.02)
    return AccessTokenVerifier(jwks, issuer="tessera-auth", audience="tessera", sellers=book)


async def test_a_session_is_exchanged_for_a_token_other_services_verify(harness: Any) -> None:
    async with harness() as h:
        user_id, email = await h.user()
        signed = await h.sign_in(email)
        exchanged = await h.client.post(
            "/v1/sessions/token", json={"session_id": signed["session_id"]}
        )
        token = exchanged.json()["access_token"]
        principal = await (await verifier_for(h)).verify(token)
        jwks = (await h.client.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert exchanged.status_code == 200 and exchanged.json()["expires_in"] == 300
    assert header["alg"] == "EdDSA" and header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert {k["kty"] for k in jwks["keys"]} == {"OKP"} and {k["crv"] for k in jwks["keys"]} == {
        "Ed25519"
    }
    assert "d" not in jwks["keys"][0]
    assert claims["exp"] - claims["iat"] == 300
    assert principal.user_id == user_id and principal.role == "customer"
    assert principal.session_id == signed["session"] and principal.token_id
    assert str(principal.account_id) == claims["acc"]
    # The token names its seller by slug and mode; the id comes from the directory.
    assert claims["sel"] == "home" and claims["mod"] == "live"
    assert str(HOME_SELLER_ID) not in token and principal.tenant == HOME_LIVE


async def test_unknown_tampered_or_foreign_tokens_are_refused(harness: Any) -> None:
    async with harness() as h:
        _, email = await h.user()
        token, _ = await h.signed_in_token(email)
        unknown = await h.client.post("/v1/sessions/token", json={"session_id": "x" * 43})
        verifier = await verifier_for(h)
        header, _payload, signature = token.split(".")
        forged_claims = jwt.decode(token, options={"verify_signature": False}) | {"role": "admin"}
        foreign = jwt.encode(
            forged_claims,
            Ed25519PrivateKey.generate(),
            algorithm="EdDSA",
            headers={"kid": jwt.get_unverified_header(token)["kid"]},
        )
        tampered = ".".join(
            [header, jwt.utils.base64url_encode(b'{"sub":"x"}').decode(), signature]
        )
        refused = []
        # Flip a signature character well inside the last block: the final characters of a
        # base64url Ed25519 signature carry padding bits, so changing them may change nothing.
        flipped = token[:-10] + ("B" if token[-10] != "B" else "C") + token[-9:]
        for bad in (foreign, tampered, flipped):
            try:
                await verifier.verify(bad)
            except Unauthorized:
                refused.append(bad)
        own_route = await h.client.get("/v1/sessions", headers=bearer(foreign))
    assert unknown.status_code == 401
    assert unknown.json()["type"] == "urn:tessera:problem:session-invalid"
    assert len(refused) == 3
    assert own_route.status_code == 401


async def test_sessions_are_listed_and_revoked_one_by_one(harness: Any) -> None:
    async with harness() as h:
        _, email = await h.user()
        token, first = await h.signed_in_token(email)
        second = await h.sign_in(email)
        listed = (await h.client.get("/v1/sessions", headers=bearer(token))).json()["sessions"]
        revoked = await h.client.delete(f"/v1/sessions/{second['session']}", headers=bearer(token))
        again = await h.client.delete(f"/v1/sessions/{second['session']}", headers=bearer(token))
        after = (await h.client.get("/v1/sessions", headers=bearer(token))).json()["sessions"]
        dead = await h.client.post("/v1/sessions/token", json={"session_id": second["session_id"]})
        alive = await h.client.post("/v1/sessions/token", json={"session_id": first["session_id"]})
    assert {s["id"] for s in listed} == {first["session"], second["session"]}
    assert [s["current"] for s in listed if s["id"] == first["session"]] == [True]
    assert all(s["ip"] == "127.0.0.1" and s["kind"] == "browser" for s in listed)
    assert revoked.status_code == 204 and again.status_code == 404
    assert [s["id"] for s in after] == [first["session"]]
    assert dead.status_code == 401 and alive.status_code == 200


async def test_someone_elses_session_cannot_be_revoked(harness: Any) -> None:
    async with harness() as h:
        _, alice = await h.user()
        _, bob = await h.user()
        alice_token, _ = await h.signed_in_token(alice)
        bob_session = await h.sign_in(bob)
        attempt = await h.client.delete(
            f"/v1/sessions/{bob_session['session']}", headers=bearer(alice_token)
        )
        still = await h.client.post(
            "/v1/sessions/token", json={"session_id": bob_session["session_id"]}
        )
    assert attempt.status_code == 404 and still.status_code == 200


async def test_revoke_all_signs_out_everywhere(harness: Any) -> None:
    async with harness() as h:
        _, email = await h.user()
        token, first = await h.signed_in_token(email)
        others = [await h.sign_in(email) for _ in range(2)]
        revoked = await h.client.post("/v1/sessions/revoke-all", headers=bearer(token))
        exchanges = [
            await h.client.post("/v1/sessions/token", json={"session_id": s["session_id"]})
            for s in [first, *others]
        ]
        # Auth's own routes refuse the still-unexpired token of the ended session.
        listing = await h.client.get("/v1/sessions", headers=bearer(token))
    assert revoked.json() == {"revoked": 3}
    assert [e.status_code for e in exchanges] == [401, 401, 401]
    assert listing.status_code == 401


async def test_sign_out_ends_the_session(harness: Any) -> None:
    async with harness() as h:
        _, email = await h.user()
        signed = await h.sign_in(email)
        out = await h.client.post(
            "/v1/sessions/sign-out", json={"session_id": signed["session_id"]}
        )
        after = await h.client.post("/v1/sessions/token", json={"session_id": signed["session_id"]})
    assert out.status_code == 204 and after.status_code == 401


async def test_an_idle_session_expires(harness: Any) -> None:
    async with harness(session_idle_seconds=60) as h:
        _, email = await h.user()
        signed = await h.sign_in(email)
        key = h.auth.keys("sess", h.auth.hasher("session", signed["session_id"]))
        await h.auth.redis.pexpire(key, 50)  # as if 60 s had passed without a request
        await asyncio.sleep(0.1)
        after = await h.client.post("/v1/sessions/token", json={"session_id": signed["session_id"]})
    assert after.status_code == 401


async def test_disabling_a_user_ends_their_sessions_at_once(
    harness: Any, database_url: str
) -> None:
    async with harness() as h:
        user_id, email = await h.user()
        signed = await h.sign_in(email)
        from tessera.auth.sessions import service as sessions
        from tessera.auth.users import service as users

        await users.disable(h.auth.pool, sessions.store(h.auth), HOME_LIVE, user_id)
        after = await h.client.post("/v1/sessions/token", json={"session_id": signed["session_id"]})
        conn = await asyncpg.connect(database_url)
        try:
            events = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE subject = 'auth.user.disabled.v1'"
            )
            audited = await conn.fetchval(
                "SELECT count(*) FROM audit_events WHERE action = 'user.disabled' AND user_id = $1",
                user_id,
            )
        finally:
            await conn.close()
    assert after.status_code == 401
    assert events == 1 and audited == 1


async def test_rotation_keeps_old_tokens_valid_until_they_expire(
    harness: Any, database_url: str
) -> None:
    async with harness(signing_key_cache_seconds=0) as h:
        _, email = await h.user()
        old_token, signed = await h.signed_in_token(email)
        old_kid = jwt.get_unverified_header(old_token)["kid"]
        new_kid = await ring.rotate(h.auth.pool, h.auth.sealer)
        new_token = await h.access_token(signed["session_id"])
        verifier = await verifier_for(h)
        both = [await verifier.verify(old_token), await verifier.verify(new_token)]
        published = {
            k["kid"] for k in (await h.client.get("/.well-known/jwks.json")).json()["keys"]
        }
        conn = await asyncpg.connect(database_url)
        try:  # as if the old key had been retired longer ago than its tokens live
            await conn.execute(
                "UPDATE signing_keys SET retired_at = now() - interval '1 hour' WHERE kid = $1",
                old_kid,
            )
        finally:
            await conn.close()
        later = {k["kid"] for k in (await h.client.get("/.well-known/jwks.json")).json()["keys"]}
        refused = False
        try:
            await (await verifier_for(h)).verify(old_token)
        except Unauthorized:
            refused = True
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid != old_kid
    assert len(both) == 2
    assert published == {old_kid, new_kid}
    assert later == {new_kid} and refused


async def test_private_keys_are_encrypted_at_rest(harness: Any, database_url: str) -> None:
    async with harness() as h:
        await h.client.get("/.well-known/jwks.json")
        conn = await asyncpg.connect(database_url)
        try:
            row = await conn.fetchrow("SELECT kid, private_key_encrypted FROM signing_keys")
        finally:
            await conn.close()
        active = await h.auth.keyring.active()
        sealer = h.auth.sealer
    sealed = bytes(row["private_key_encrypted"])
    assert active.seed not in sealed
    assert len(sealed) == 24 + 16 + 32  # secretbox: nonce, Poly1305 tag, the 32-byte seed
    assert sealer.open(sealed) == active.seed
    with pytest.raises(SealingError):  # another key-encryption key does not open it
        sealer_of("another-key-encryption-key-entirely").open(sealed)


def legacy_seal(secret: str, raw: bytes, kid: str) -> bytes:
    """A key sealed as auth sealed them before the shared kernel (written independently of
    auth's code): AES-256-GCM under HKDF-SHA256(secret, "tessera-auth/key-encryption"), a
    12-byte nonce first, the kid as associated data."""
    key = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"tessera-auth/key-encryption")
    nonce = os.urandom(12)
    return nonce + AESGCM(key.derive(secret.encode())).encrypt(nonce, raw, kid.encode())


async def test_keys_sealed_the_old_way_are_resealed_at_start_and_keep_signing(
    harness: Any, database_url: str
) -> None:
    async with harness() as h:  # a first start makes the schema (and a key, dropped below)
        secret = h.auth.settings.key_encryption_key
    retired, active = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    raw = {
        kid: key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        for kid, key in (("old-retired", retired), ("old-active", active))
    }
    public = {
        kid: key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        for kid, key in (("old-retired", retired), ("old-active", active))
    }
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM signing_keys")
        for kid, is_retired in (("old-retired", True), ("old-active", False)):
            await conn.execute(
                "INSERT INTO signing_keys (kid, private_key_encrypted, public_key, retired_at)"
                " VALUES ($1, $2, $3, CASE WHEN $4 THEN now() - interval '1 minute' END)",
                kid,
                legacy_seal(secret, raw[kid], kid),
                public[kid],
                is_retired,
            )
        async with harness() as h:
            _, email = await h.user()
            token, _ = await h.signed_in_token(email)
            principal = await (await verifier_for(h)).verify(token)
            published = {
                k["kid"] for k in (await h.client.get("/.well-known/jwks.json")).json()["keys"]
            }
            sealer = h.auth.sealer
        rows = {
            r["kid"]: bytes(r["private_key_encrypted"])
            for r in await conn.fetch("SELECT kid, private_key_encrypted FROM signing_keys")
        }
    finally:
        await conn.close()
    header = jwt.get_unverified_header(token)
    # The old active key still signs (same kid, same public key); both stay published.
    assert header["kid"] == "old-active" and principal.token_id
    jwt.decode(
        token,
        key=active.public_key(),
        algorithms=["EdDSA"],
        audience="tessera",
        issuer="tessera-auth",
    )
    assert published == {"old-active", "old-retired"}
    # Both are now sealed the kernel's way, and open to the same private keys.
    assert set(rows) == {"old-active", "old-retired"}
    assert {kid: sealer.open(sealed) for kid, sealed in rows.items()} == raw


async def test_a_key_that_opens_with_neither_format_stops_the_start(
    harness: Any, database_url: str
) -> None:
    async with harness():  # the schema
        pass
    key = Ed25519PrivateKey.generate()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM signing_keys")
        await conn.execute(
            "INSERT INTO signing_keys (kid, private_key_encrypted, public_key) VALUES ($1, $2, $3)",
            "foreign",
            legacy_seal("not-this-service-key-encryption-key", b"\x01" * 32, "foreign"),
            key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        )
    finally:
        await conn.close()
    with pytest.raises(SealingError, match="foreign"):
        async with harness():
            pass
