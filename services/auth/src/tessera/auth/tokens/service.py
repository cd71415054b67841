"""Minting access tokens, and verifying them inside auth itself."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from tessera.auth.context import Auth
from tessera.auth.secrets import new_token
from tessera.auth.signing_keys.ring import KeyRingCache
from tessera.auth.users.schemas import User
from tessera.shared.tokens import AccessTokenVerifier, JwksCache


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int


async def mint(auth: Auth, user: User, sid: str) -> AccessToken:
    """A signed access token for `user` in session (or device grant) `sid`."""
    key = await auth.keyring.active()
    ttl = auth.settings.access_token_ttl_seconds
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": auth.settings.token_issuer,
        "aud": auth.settings.token_audience,
        "sub": str(user.id),
        "acc": str(user.account_id),
        "role": user.role,
        "sid": sid,
        "jti": new_token(16),
        "iat": now,
        "exp": now + ttl,
    }
    token = key.jws(claims)
    return AccessToken(token=token, expires_in=ttl)


class LocalJwks(JwksCache):
    """The shared verifier's key source, fed from auth's own key ring instead of HTTP."""

    def __init__(self, keyring: KeyRingCache) -> None:
        super().__init__("local:jwks")
        self.keyring = keyring
        self._source: dict[str, Any] | None = None

    async def key(self, kid: str) -> jwt.PyJWK | None:
        jwks = await self.keyring.jwks()
        if jwks is not self._source:  # the ring swaps in a new dict when its keys change
            self.load(jwks)
            self._source = jwks
        return self._keys.get(kid)


def local_verifier(auth: Auth) -> AccessTokenVerifier:
    return AccessTokenVerifier(
        LocalJwks(auth.keyring),
        issuer=auth.settings.token_issuer,
        audience=auth.settings.token_audience,
    )
