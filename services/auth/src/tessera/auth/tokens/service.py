"""Minting access tokens, and verifying them inside auth itself."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from tessera.auth.context import Auth
from tessera.auth.secrets import new_token
from tessera.auth.sellers.service import slug_of
from tessera.auth.users.schemas import User
from tessera.shared.api_keys.sessions import SELLER_SESSION_ROLE


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


async def mint_seller_session(
    auth: Auth, member: UUID, slug: str, role: str, mode: str, sid: str
) -> AccessToken:
    """A member's seller-session token (tessera.shared.api_keys.sessions): the dashboard
    acts for seller `slug` in `mode` with it, as its secret key would, for a few minutes.
    Its own audience keeps it out of every customer route."""
    key = await auth.keyring.active()
    ttl = auth.settings.seller_session_ttl_seconds
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": auth.settings.token_issuer,
        "aud": auth.infra.seller_session_audience,
        "sub": str(member),
        "role": SELLER_SESSION_ROLE,
        "mrl": role,
        "sid": sid,
        "sel": slug,
        "mod": mode,
        "jti": new_token(16),
        "iat": now,
        "exp": now + ttl,
    }
    return AccessToken(token=key.jws(claims), expires_in=ttl)
