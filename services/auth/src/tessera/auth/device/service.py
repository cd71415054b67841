"""Device-grant verbs: authorize, approve or deny, poll for tokens, refresh."""

from __future__ import annotations

import time
from uuid import UUID

from tessera.auth.audit import service as audit
from tessera.auth.context import Auth
from tessera.auth.device import codes
from tessera.auth.device.errors import (
    BrowserSessionRequired,
    OAuthError,
    ReauthenticationRequired,
    UnknownUserCode,
)
from tessera.auth.device.schemas import DeviceAuthorization, PendingGrant, TokenResponse
from tessera.auth.device.store import DeviceStore
from tessera.auth.ratelimits import refuse_if_exhausted
from tessera.auth.secrets import new_token
from tessera.auth.sessions import service as sessions
from tessera.auth.sessions.store import SessionStore
from tessera.auth.tokens import service as tokens
from tessera.shared.tokens import Principal

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def store(auth: Auth) -> DeviceStore:
    return DeviceStore(auth.redis, auth.keys)


def client_name(auth: Auth, client_id: str) -> str:
    name = auth.settings.device_clients.get(client_id)
    if name is None:
        raise OAuthError("invalid_client", "Unknown client.", status=401)
    return name


async def authorize(
    auth: Auth, client_id: str, client_version: str, *, ip: str
) -> DeviceAuthorization:
    """Start a device grant (RFC 8628 §3.1-3.2)."""
    client_name(auth, client_id)
    s = auth.settings
    await auth.limiter.enforce(s.rl_device_authorize_per_ip, "device-authorize-ip", ip)
    device_code = new_token()
    now = time.time()
    fields = {
        "client_id": client_id,
        "client_version": client_version[:40],
        "ip": ip,
        "status": "pending",
        "interval": str(s.device_poll_interval_seconds),
        # The first poll is due one interval after the authorization.
        "last_poll": repr(now),
        "created_at": repr(now),
        "expires_at": repr(now + s.device_code_ttl_seconds),
    }
    while True:
        user_code = codes.new_user_code()
        if await store(auth).create(
            auth.hasher("device", device_code),
            auth.hasher("user-code", user_code),
            ttl=s.device_code_ttl_seconds,
            fields=fields,
        ):
            break
    return DeviceAuthorization(
        device_code=device_code,
        user_code=codes.display(user_code),
        verification_uri=f"{s.portal_url.rstrip('/')}/device",
        expires_in=s.device_code_ttl_seconds,
        interval=s.device_poll_interval_seconds,
    )


async def require_recent_browser_session(auth: Auth, principal: Principal) -> None:
    """Only a person signed in in a browser, recently, may look up or approve a device code.
    Any access token is not enough: one minted by a device grant (or from a browser session
    signed in long ago and left open) must not mint a new 90-day refresh family. Auth reads
    what stands behind the token from the session store (the token's `sid` names it)."""
    record = await sessions.current_session(auth, principal)
    if record.kind != "browser":
        raise BrowserSessionRequired()
    max_age = auth.settings.device_approval_max_age_seconds
    if time.time() - record.created_at > max_age:
        raise ReauthenticationRequired(max_age)


async def _entry(auth: Auth, principal: Principal, entry: str, ip: str) -> str:
    """The hash of an entered user code, after the entry page's limits."""
    s = auth.settings
    user = str(principal.user_id)
    await auth.limiter.enforce(s.rl_device_entry_per_user, "device-entry-user", user)
    await refuse_if_exhausted(
        auth.limiter, s.rl_device_wrong_entries_per_user, "device-wrong", user
    )
    code = codes.normalize(entry)
    return auth.hasher("user-code", code or "-")


async def _wrong(auth: Auth, principal: Principal, ip: str) -> UnknownUserCode:
    await auth.limiter.hit(
        auth.settings.rl_device_wrong_entries_per_user, "device-wrong", str(principal.user_id)
    )
    await audit.record(
        auth.pool, "device.code_wrong", principal.tenant, user_id=principal.user_id, ip=ip
    )
    return UnknownUserCode()


async def lookup(auth: Auth, principal: Principal, entry: str, *, ip: str) -> PendingGrant:
    """What the approval page shows for an entered code (app, version, requesting IP)."""
    await require_recent_browser_session(auth, principal)
    user_hash = await _entry(auth, principal, entry, ip)
    grant = await store(auth).pending(user_hash, time.time())
    if grant is None:
        raise await _wrong(auth, principal, ip)
    return PendingGrant.of(
        grant, auth.settings.device_clients.get(grant.client_id, grant.client_id)
    )


async def decide(auth: Auth, principal: Principal, entry: str, decision: str, *, ip: str) -> None:
    """Approve or deny a pending grant (a person pressed the button); audited."""
    await require_recent_browser_session(auth, principal)
    user_hash = await _entry(auth, principal, entry, ip)
    status = "approved" if decision == "approve" else "denied"
    if not await store(auth).decide(user_hash, time.time(), status, str(principal.user_id)):
        raise await _wrong(auth, principal, ip)
    await audit.record(
        auth.pool,
        f"device.{status}",
        principal.tenant,
        user_id=principal.user_id,
        actor_id=principal.user_id,
        ip=ip,
    )


async def exchange_device_code(
    auth: Auth, device_code: str, client_id: str, *, ip: str
) -> TokenResponse:
    """Poll (RFC 8628 §3.4-3.5): tokens once approved, else the RFC's error codes."""
    client_name(auth, client_id)
    s = auth.settings
    result = await store(auth).poll(
        auth.hasher("device", device_code), client_id, time.time(), s.device_slow_down_seconds
    )
    if result[0] != "ok":
        raise OAuthError(result[0])
    user_id, client_version = UUID(result[1]), result[2]
    user = await sessions.active_user(auth, user_id)
    if user is None:
        raise OAuthError("access_denied")
    family, handle, refresh = new_token(), new_token(12), new_token()
    name = auth.settings.device_clients[client_id]
    await SessionStore(auth.redis, auth.keys).create(
        family,
        handle,
        user.id,
        kind="device",
        ttl=s.refresh_token_ttl_seconds,
        absolute=s.refresh_token_ttl_seconds,
        ip=ip,
        device=f"{name} {client_version}".strip(),
        client_id=client_id,
        client_name=name,
        client_version=client_version,
    )
    await store(auth).add_refresh(
        auth.hasher("refresh", refresh),
        family,
        str(user.id),
        client_id,
        s.refresh_token_ttl_seconds,
    )
    await audit.record(
        auth.pool, "device.signed_in", user.tenant, user_id=user.id, ip=ip, client_id=client_id
    )
    access = await tokens.mint(auth, user, handle)
    return TokenResponse(
        access_token=access.token, expires_in=access.expires_in, refresh_token=refresh
    )


async def refresh(auth: Auth, refresh_token: str, client_id: str, *, ip: str) -> TokenResponse:
    """Rotate a refresh token (RFC 6749 §6). A spent token presented after the grace is
    theft or a bug: its whole family (the device sign-in) is revoked, and it is audited."""
    client_name(auth, client_id)
    new = new_token()
    result = await store(auth).rotate(
        auth.hasher("refresh", refresh_token),
        auth.hasher("refresh", new),
        now=time.time(),
        grace=auth.settings.refresh_reuse_grace_seconds,
        client_id=client_id,
        ip=ip,
    )
    if result[0] == "reuse":
        user_id = UUID(result[1])
        if result[2]:
            await SessionStore(auth.redis, auth.keys).delete(user_id, result[2])
        tenant = await sessions.tenant_of_user(auth, user_id)
        await audit.record(
            auth.pool, "refresh.reuse_detected", tenant, user_id=user_id, ip=ip, session=result[2]
        )
        raise OAuthError("invalid_grant")
    if result[0] != "ok":
        raise OAuthError("invalid_grant")
    user = await sessions.active_user(auth, UUID(result[1]))
    if user is None:
        raise OAuthError("invalid_grant")
    record = await SessionStore(auth.redis, auth.keys).get(result[2])
    if record is None:
        raise OAuthError("invalid_grant")
    access = await tokens.mint(auth, user, record.handle)
    return TokenResponse(access_token=access.token, expires_in=access.expires_in, refresh_token=new)
