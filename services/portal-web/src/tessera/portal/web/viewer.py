"""Who is signed in: the session cookie, exchanged at auth for a short-lived access token.

The token is cached in Redis under HMAC(session id) until shortly before it expires, so a
page costs no exchange most of the time and every replica shares the cache. A token an
upstream refuses (expired early, session revoked) is dropped and the session exchanged once
more; if auth refuses the session itself, the person is signed out.

Licensing and billing accept a token until it expires, so a revocation made through the
portal (sign out a session, sign out everywhere, an admin disabling a user) also writes a
"not before" mark; a cached token older than the mark is exchanged again, and auth refuses
the dead session at once. A revocation made elsewhere (the operator CLI) reaches the
portal's pages within one token lifetime.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from tessera.portal.context import Portal, PortalDep
from tessera.portal.upstream.base import Caller, TokenRejected, UpstreamError
from tessera.portal.web.errors import PageNotFound, SignedOut
from tessera.portal.web.security import COOKIE_VALUE, SESSION_COOKIE, cache_key
from tessera.shared.http.context import client_ip, current_request_id
from tessera.shared.tokens import Principal, Unauthorized

log = logging.getLogger("tessera.portal.session")
T = TypeVar("T")
# Refresh this long before the token's own expiry, so no call carries a dying token.
EARLY_SECONDS = 30


def caller_of(request: Request) -> Caller:
    return Caller(
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent", "")[:200],
        request_id=current_request_id(),
    )


@dataclass
class Viewer:
    """The signed-in person for this request."""

    portal: Portal
    caller: Caller
    session_id: str
    token: str
    principal: Principal
    email: str | None

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin

    async def call(self, action: Callable[[str], Awaitable[T]]) -> T:
        """Run an upstream call with the access token; on a refused token, exchange the
        session once more and retry once."""
        try:
            return await action(self.token)
        except TokenRejected:
            self.token, self.principal = await fresh_token(
                self.portal, self.caller, self.session_id
            )
            return await action(self.token)


async def fresh_token(portal: Portal, caller: Caller, session_id: str) -> tuple[str, Principal]:
    try:
        access = await portal.auth.exchange(caller, session_id)
    except UpstreamError as error:
        if error.status == 401:
            await forget(portal, session_id)
            raise SignedOut() from None
        raise
    principal = await portal.token_verifier.verify(access.access_token)
    ttl = max(1, access.expires_in - EARLY_SECONDS)
    await portal.redis.set(
        portal.keys("tok", cache_key(portal.settings.secret_key, session_id)),
        json.dumps({"token": access.access_token, "at": time.time()}),
        ex=ttl,
    )
    return access.access_token, principal


async def cached_token(portal: Portal, session_id: str) -> tuple[str, Principal] | None:
    store = portal.redis
    raw = await store.get(portal.keys("tok", cache_key(portal.settings.secret_key, session_id)))
    if raw is None:
        return None
    cached = json.loads(raw)
    try:
        principal = await portal.token_verifier.verify(cached["token"])
    except Unauthorized:
        return None
    marks = await store.mget(
        portal.keys("nbf", "user", str(principal.user_id)),
        portal.keys("nbf", "session", principal.session_id),
    )
    if any(mark is not None and float(mark) >= cached["at"] for mark in marks):
        return None  # revoked through the portal since: ask auth again
    return str(cached["token"]), principal


async def mark_revoked(portal: Portal, *, user_id: str = "", session: str = "") -> None:
    """Cached tokens of this user (or session) minted before now are not trusted any more."""
    key = portal.keys("nbf", "user", user_id) if user_id else portal.keys("nbf", "session", session)
    # Long enough to outlive any cached token (auth's tokens live minutes).
    await portal.redis.set(key, str(time.time()), ex=3600)


async def remember_email(portal: Portal, session_id: str, email: str, seconds: int) -> None:
    key = portal.keys("who", cache_key(portal.settings.secret_key, session_id))
    await portal.redis.set(key, json.dumps({"email": email}), ex=max(60, seconds))


async def forget(portal: Portal, session_id: str) -> None:
    digest = cache_key(portal.settings.secret_key, session_id)
    await portal.redis.delete(portal.keys("tok", digest), portal.keys("who", digest))


async def find_viewer(request: Request, portal: Portal) -> Viewer | None:
    session_id = request.cookies.get(SESSION_COOKIE, "")
    if not COOKIE_VALUE.match(session_id):
        return None
    caller = caller_of(request)
    found = await cached_token(portal, session_id)
    if found is None:
        try:
            found = await fresh_token(portal, caller, session_id)
        except SignedOut:
            request.state.drop_session = True
            return None
    token, principal = found
    raw = await portal.redis.get(
        portal.keys("who", cache_key(portal.settings.secret_key, session_id))
    )
    email = json.loads(raw).get("email") if raw else None
    viewer = Viewer(portal, caller, session_id, token, principal, email)
    request.state.viewer = viewer
    return viewer


async def optional_viewer(request: Request, portal: PortalDep) -> Viewer | None:
    return await find_viewer(request, portal)


async def required_viewer(request: Request, portal: PortalDep) -> Viewer:
    viewer = await find_viewer(request, portal)
    if viewer is None:
        raise SignedOut()
    return viewer


async def admin_viewer(request: Request, portal: PortalDep) -> Viewer:
    """An admin, or a plain 404: nobody else learns that /admin exists."""
    viewer = await find_viewer(request, portal)
    if viewer is None or not viewer.is_admin:
        raise PageNotFound()
    return viewer


MaybeViewerDep = Annotated[Viewer | None, Depends(optional_viewer)]
ViewerDep = Annotated[Viewer, Depends(required_viewer)]
AdminViewerDep = Annotated[Viewer, Depends(admin_viewer)]
