"""Minting access tokens, and verifying them inside auth itself."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tessera.auth.context import Auth
from tessera.auth.secrets import new_token
from tessera.auth.sellers.service import slug_of
from tessera.auth.users.schemas import User


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int


async def mint(auth: Auth, user: User, sid: str) -> AccessToken:
    """A signed access token for `user` in session (or device grant) `sid`, naming the
    user's seller by slug (`sel`) and mode (`mod`), never by internal id."""
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
        "sel": await slug_of(auth, user.tenant.seller_id),
        "mod": user.tenant.mode,
        "jti": new_token(16),
        "iat": now,
        "exp": now + ttl,
    }
    token = key.jws(claims)
    return AccessToken(token=token, expires_in=ttl)
