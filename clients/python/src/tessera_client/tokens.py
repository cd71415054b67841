"""Verifying a customer's access token locally: auth's EdDSA (Ed25519) JWTs, against its
JWKS (`/.well-known/jwks.json`), with no call per token.

The key cache is sans-IO: `JwksCache` decides when to fetch and the clients fetch (sync or
async). It refetches when a token names a `kid` it does not hold (auth rotated its key) or
when its copy is older than `max_age`, but at most once per `min_refresh`, so tokens with
made-up kids cannot turn into a flood of fetches. A failed fetch keeps the keys it has:
auth being away for a moment must not refuse every customer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import jwt

from tessera_client.errors import InvalidToken

ALGORITHMS = ["EdDSA"]
# The clock skew allowed between auth and this server, as the services allow.
LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class CustomerToken:
    """A verified access token's claims."""

    customer_id: UUID  # `acc`: the customer's id in every seller route
    user_id: UUID  # `sub`: auth's user id (stays inside auth)
    seller: str  # `sel`: the seller's slug
    mode: Literal["test", "live"]  # `mod`
    role: str
    session_id: str
    token_id: str
    expires_at: int
    claims: dict[str, Any]


class JwksCache:
    def __init__(self, *, max_age: float = 300.0, min_refresh: float = 10.0) -> None:
        self.max_age = max_age
        self.min_refresh = min_refresh
        self.keys: dict[str, jwt.PyJWK] = {}
        self.fetched_at: float | None = None

    def needs_fetch(self, kid: str) -> bool:
        if self.fetched_at is None:
            return True
        age = time.monotonic() - self.fetched_at
        return (kid not in self.keys or age > self.max_age) and age >= self.min_refresh

    def load(self, jwks: Any) -> None:
        keys: dict[str, jwt.PyJWK] = {}
        for data in jwks.get("keys", []) if isinstance(jwks, dict) else []:
            if data.get("kty") == "OKP" and data.get("crv") == "Ed25519" and data.get("kid"):
                keys[data["kid"]] = jwt.PyJWK.from_dict(data, algorithm="EdDSA")
        self.keys = keys
        self.fetched_at = time.monotonic()

    def failed(self) -> None:
        # Try again after min_refresh, keeping what we hold.
        self.fetched_at = time.monotonic()


def kid_of(token: str) -> str:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken("malformed token") from None
    kid = header.get("kid")
    if header.get("alg") not in ALGORITHMS or not isinstance(kid, str):
        raise InvalidToken("not an EdDSA token with a kid")
    return kid


def verify(
    token: str,
    key: jwt.PyJWK | None,
    *,
    issuer: str,
    audience: str,
    seller: str,
    mode: str,
) -> CustomerToken:
    """The token's claims, if auth signed it for this seller and mode and it is in date."""
    if key is None:
        raise InvalidToken("signed by a key auth does not publish")
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=ALGORITHMS,
            issuer=issuer,
            audience=audience,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from None
    # Auth signs every seller's customers with one key: without this check a customer of
    # another seller (or this seller's test customer, at a live server) would pass.
    if claims.get("sel") != seller:
        raise InvalidToken("issued for another seller")
    if claims.get("mod") != mode:
        raise InvalidToken(f"a {claims.get('mod')} token, and this key is {mode}")
    try:
        return CustomerToken(
            customer_id=UUID(claims["acc"]),
            user_id=UUID(claims["sub"]),
            seller=claims["sel"],
            mode=claims["mod"],
            role=str(claims.get("role", "customer")),
            session_id=str(claims.get("sid", "")),
            token_id=str(claims.get("jti", "")),
            expires_at=int(claims["exp"]),
            claims=claims,
        )
    except (KeyError, ValueError, TypeError):
        raise InvalidToken("missing or malformed claims") from None
