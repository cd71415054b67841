"""The access-token verifier, with tokens signed by an independent Ed25519 key."""

import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tessera.shared.tokens import AccessTokenVerifier, JwksCache, Unauthorized

ISS, AUD = "tessera-auth", "tessera"


def a_key(kid: str) -> tuple[Ed25519PrivateKey, dict[str, Any]]:
    private = Ed25519PrivateKey.generate()
    public = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key()))
    return private, {**public, "kid": kid, "use": "sig", "alg": "EdDSA"}


def a_token(private: Ed25519PrivateKey, kid: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISS,
        "aud": AUD,
        "sub": str(uuid.uuid4()),
        "acc": str(uuid.uuid4()),
        "role": "customer",
        "sid": "s1",
        "jti": "j1",
        "iat": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": kid})


class JwksServer:
    """Stands in for auth's JWKS endpoint, counting fetches."""

    def __init__(self, *keys: dict[str, Any]) -> None:
        self.keys = list(keys)
        self.fetches = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        return httpx.Response(200, json={"keys": self.keys})


def verifier_for(server: JwksServer, **cache: Any) -> AccessTokenVerifier:
    client = httpx.AsyncClient(transport=httpx.MockTransport(server.handler))
    return AccessTokenVerifier(
        JwksCache("http://auth/.well-known/jwks.json", client=client, **cache),
        issuer=ISS,
        audience=AUD,
    )


async def test_a_valid_token_yields_its_principal() -> None:
    private, public = a_key("k1")
    verifier = verifier_for(JwksServer(public))
    principal = await verifier.verify(a_token(private, "k1", role="admin"))
    assert principal.is_admin


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": int(time.time()) - 120},
        {"aud": "someone-else"},
        {"iss": "evil"},
        {"acc": "not-a-uuid"},
    ],
)
async def test_a_defective_token_is_refused(overrides: dict[str, Any]) -> None:
    private, public = a_key("k1")
    verifier = verifier_for(JwksServer(public))
    with pytest.raises(Unauthorized):
        await verifier.verify(a_token(private, "k1", **overrides))


async def test_a_token_signed_by_a_foreign_key_is_refused() -> None:
    _, public = a_key("k1")
    foreign, _ = a_key("k1")
    with pytest.raises(Unauthorized):
        await verifier_for(JwksServer(public)).verify(a_token(foreign, "k1"))


async def test_a_tampered_token_is_refused() -> None:
    private, public = a_key("k1")
    header, _payload, signature = a_token(private, "k1").split(".")
    forged = jwt.utils.base64url_encode(
        json.dumps({"sub": str(uuid.uuid4()), "role": "admin"}).encode()
    ).decode()
    with pytest.raises(Unauthorized):
        await verifier_for(JwksServer(public)).verify(f"{header}.{forged}.{signature}")


async def test_an_unsigned_token_is_refused() -> None:
    _, public = a_key("k1")
    unsigned = jwt.encode({"sub": "x"}, None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(Unauthorized):
        await verifier_for(JwksServer(public)).verify(unsigned)


async def test_a_rotated_key_is_fetched_once_and_unknown_kids_do_not_flood_the_jwks() -> None:
    old, old_public = a_key("old")
    new, new_public = a_key("new")
    server = JwksServer(old_public)
    verifier = verifier_for(server, min_refresh=0.0)
    await verifier.verify(a_token(old, "old"))
    server.keys.append(new_public)
    await verifier.verify(a_token(new, "new"))
    assert server.fetches == 2
    limited = verifier_for(server, min_refresh=60.0)
    await limited.verify(a_token(old, "old"))
    for n in range(20):
        with pytest.raises(Unauthorized):
            await limited.verify(a_token(old, f"made-up-{n}"))
    assert server.fetches == 3
