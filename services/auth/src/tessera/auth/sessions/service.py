"""Session verbs: open one at sign-in, exchange it for an access token, list and revoke."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from tessera.auth.audit import service as audit
from tessera.auth.context import Auth
from tessera.auth.secrets import new_token
from tessera.auth.sessions.errors import SessionInvalid
from tessera.auth.sessions.store import SessionRecord, SessionStore
from tessera.auth.tokens import service as tokens
from tessera.auth.tokens.service import AccessToken
from tessera.auth.users import queries as user_queries
from tessera.auth.users.schemas import User
from tessera.shared.sellers import HOME_LIVE, Tenant
from tessera.shared.tokens import Principal


def store(auth: Auth) -> SessionStore:
    return SessionStore(auth.redis, auth.keys)


@dataclass(frozen=True)
class OpenedSession:
    session_id: str
    handle: str
    expires_in: int


async def open_browser_session(auth: Auth, user: User, *, ip: str, device: str) -> OpenedSession:
    """A new session (a new id at every sign-in: no fixation)."""
    secret = new_token()
    handle = new_token(12)
    s = auth.settings
    await store(auth).create(
        auth.hasher("session", secret),
        handle,
        user.id,
        kind="browser",
        ttl=s.session_idle_seconds,
        absolute=s.session_absolute_seconds,
        ip=ip,
        device=device,
    )
    return OpenedSession(secret, handle, s.session_idle_seconds)


async def exchange(auth: Auth, session_id: str, *, ip: str) -> tuple[AccessToken, str]:
    """An access token for a live session of an active user; `SessionInvalid` otherwise."""
    key = auth.hasher("session", session_id)
    await auth.limiter.enforce(auth.settings.rl_token_per_session, "token-session", key)
    sessions = store(auth)
    record = await sessions.touch(key, ip=ip, idle=auth.settings.session_idle_seconds)
    if record is None or record.kind != "browser":
        raise SessionInvalid()
    user = await active_user(auth, record.user_id)
    if user is None:
        await sessions.delete(record.user_id, record.handle)
        raise SessionInvalid()
    return await tokens.mint(auth, user, record.handle), record.handle


async def active_user(auth: Auth, user_id: UUID) -> User | None:
    row = await user_queries.find_by_id(auth.pool, user_id)
    if row is None:
        return None
    user = User.of(row)
    return user if user.active else None


async def tenant_of_user(auth: Auth, user_id: UUID) -> Tenant:
    """The tenant a user belongs to (for the audit row of something done with only its id
    in hand); the home seller's for a user that no longer exists."""
    row = await user_queries.find_by_id(auth.pool, user_id)
    return User.of(row).tenant if row is not None else HOME_LIVE


async def sign_out(auth: Auth, session_id: str, *, ip: str) -> None:
    """End the session named by its secret id (the portal's sign-out); quiet if unknown."""
    key = auth.hasher("session", session_id)
    sessions = store(auth)
    record = await sessions.get(key)
    if record is None:
        return
    await sessions.delete(record.user_id, record.handle)
    tenant = await tenant_of_user(auth, record.user_id)
    await audit.record(auth.pool, "session.signed_out", tenant, user_id=record.user_id, ip=ip)


async def require_live(auth: Auth, principal: Principal) -> None:
    """Auth's own routes refuse a token whose session has ended (other services accept it
    until it expires, at most the token lifetime later)."""
    if not await store(auth).alive(principal.user_id, principal.session_id):
        raise SessionInvalid()


async def current_session(auth: Auth, principal: Principal) -> SessionRecord:
    """The live session that stands behind a token (browser or device); `SessionInvalid`
    if it has ended."""
    sessions = store(auth)
    key = await sessions.key_of(principal.user_id, principal.session_id)
    record = await sessions.get(key) if key is not None else None
    if record is None or record.handle != principal.session_id:
        raise SessionInvalid()
    return record


async def list_sessions(auth: Auth, principal: Principal) -> list[SessionRecord]:
    return await store(auth).list_for(principal.user_id)


async def revoke(auth: Auth, principal: Principal, handle: str, *, ip: str) -> bool:
    """End one of the caller's sessions (browser or device); False if it is not theirs."""
    if not await store(auth).delete(principal.user_id, handle):
        return False
    await audit.record(
        auth.pool,
        "session.revoked",
        principal.tenant,
        user_id=principal.user_id,
        actor_id=principal.user_id,
        ip=ip,
        session=handle,
    )
    return True


async def revoke_all(auth: Auth, principal: Principal, *, keep_current: bool, ip: str) -> int:
    """Sign out everywhere (optionally but here)."""
    keep = principal.session_id if keep_current else None
    handles = await store(auth).delete_all(principal.user_id, keep)
    await audit.record(
        auth.pool,
        "session.revoked_all",
        principal.tenant,
        user_id=principal.user_id,
        actor_id=principal.user_id,
        ip=ip,
        count=len(handles),
    )
    return len(handles)
