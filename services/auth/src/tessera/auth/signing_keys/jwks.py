"""Auth verifies its own access tokens with the kernel's verifier, fed from the key ring in
memory instead of from its own JWKS over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt

from tessera.auth.signing_keys.ring import KeyRingCache
from tessera.shared.tokens import JwksCache


class LocalJwks(JwksCache):
    """The shared verifier's key source, fed from auth's own key ring instead of HTTP. The
    ring is looked up per call: it exists only once the database is connected."""

    def __init__(self, keyring: Callable[[], KeyRingCache]) -> None:
        super().__init__("local:jwks")
        self.keyring = keyring
        self._source: dict[str, Any] | None = None

    async def key(self, kid: str) -> jwt.PyJWK | None:
        jwks = await self.keyring().jwks()
        if jwks is not self._source:  # the ring swaps in a new dict when its keys change
            self.load(jwks)
            self._source = jwks
        return self._keys.get(kid)
