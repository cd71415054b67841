"""Magic-link verbs: accept a request (queue the mail that carries the link), verify. The
sender mints the link itself when it sends the mail (`mint.py`)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from uuid import UUID

from tessera.auth.audit import service as audit
from tessera.auth.context import Auth
from tessera.auth.links.errors import CodeRequired, SignInFailed
from tessera.auth.links.schemas import SignedIn, SignedInUser, VerifyRequest
from tessera.auth.links.store import Consumed, link_store
from tessera.auth.mail_queue import queries as mail
from tessera.auth.secrets import normalize_email
from tessera.auth.sessions import service as sessions
from tessera.auth.users import queries as user_queries
from tessera.auth.users import service as users
from tessera.auth.users.schemas import User

log = logging.getLogger("tessera.auth.links")


async def request_link(
    auth: Auth, email: str, next_path: str | None, browser: str, *, ip: str
) -> None:
    """Queue a sign-in mail for the address. The same work whether or not the address
    has a user (deciding that is the sender's job, off the request path), so neither the
    answer nor its timing tells the two apart."""
    s = auth.settings
    address = normalize_email(email)
    addr = auth.hasher("addr", address)
    await auth.limiter.enforce(s.rl_link_per_ip, "link-ip", ip)
    await auth.limiter.enforce(s.rl_link_per_address_burst, "link-addr-burst", addr)
    await auth.limiter.enforce(s.rl_link_per_address, "link-addr", addr)
    # Last: the global ceiling protects the sender's reputation, and must not be spent by
    # requests another limit refuses anyway.
    await auth.limiter.enforce(s.rl_link_global, "link-global")
    payload = {"next": next_path or "", "binding": auth.hasher("browser", browser)}
    async with auth.pool.acquire() as conn, conn.transaction():
        await mail.enqueue(conn, "sign_in", address, payload)
        await audit.record(conn, "link.requested", ip=ip, email=address)
    auth.mail_wakeup.set()


async def consume(auth: Auth, body: VerifyRequest) -> Consumed:
    s = auth.settings
    links = link_store(auth)
    if body.token is not None and body.code is None:
        return await links.consume_bound(
            auth.hasher("link", body.token), auth.hasher("browser", body.browser)
        )
    if body.token is not None:
        token_hash = auth.hasher("link", body.token)
    else:
        assert body.email is not None
        current = await links.current(auth.hasher("addr", normalize_email(body.email)))
        if current is None:
            return Consumed("invalid")
        token_hash = current
    assert body.code is not None
    return await links.consume_code(
        token_hash,
        auth.hasher("code", token_hash, body.code),
        s.code_max_attempts,
        _per_hour(s.rl_code_per_account),
    )


def _per_hour(rule: str) -> int:
    from limits import parse

    item = parse(rule)
    return max(1, round(item.amount * 3600 / item.get_expiry()))


async def verify(auth: Auth, body: VerifyRequest, *, ip: str, device: str) -> SignedIn:
    """Consume the link (or code) and open a session; `SignInFailed` for every failure,
    `CodeRequired` for a live link opened in another browser."""
    await auth.limiter.enforce(auth.settings.rl_verify_per_ip, "verify-ip", ip)
    outcome = await consume(auth, body)
    if outcome.outcome == "code_required":
        raise CodeRequired()
    if outcome.outcome != "ok":
        await audit.record(
            auth.pool, "sign_in.failed", ip=ip, method="code" if body.code else "link"
        )
        raise SignInFailed()
    user: User | None = None
    opened: sessions.OpenedSession | None = None
    try:
        user = await resolve_user(auth, outcome)
        if user is None:
            await audit.record(auth.pool, "sign_in.failed", ip=ip, method="link", reason="user")
            raise SignInFailed()
        opened = await sessions.open_browser_session(auth, user, ip=ip, device=device)
        await after_sign_in(auth, user, body, ip=ip, device=device)
    except SignInFailed:
        raise
    except Exception:
        # The link was consumed for a sign-in that did not happen: undo the half-made
        # session and put the link back, so a retry works instead of saying "expired".
        await _undo(auth, outcome, opened, user)
        raise
    return SignedIn(
        session_id=opened.session_id,
        session=opened.handle,
        idle_timeout=opened.expires_in,
        expires_at=datetime.fromtimestamp(
            time.time() + auth.settings.session_absolute_seconds, UTC
        ),
        next=outcome.next or None,
        user=SignedInUser(id=user.id, account_id=user.account_id, email=user.email, role=user.role),
    )


async def _undo(
    auth: Auth, outcome: Consumed, opened: sessions.OpenedSession | None, user: User | None
) -> None:
    """Best effort: the original failure is what the caller must see."""
    try:
        if opened is not None and user is not None:
            await sessions.store(auth).delete(user.id, opened.handle)
        restored = await link_store(auth).restore(outcome)
    except Exception as error:
        log.warning("auth.sign_in.link_not_restored", extra={"error": repr(error)})
        return
    log.info("auth.sign_in.link_restored", extra={"restored": restored})


async def resolve_user(auth: Auth, outcome: Consumed) -> User | None:
    if outcome.user_id:
        return await sessions.active_user(auth, UUID(outcome.user_id))
    if not auth.settings.allow_signup:  # a sign-up link minted before signup was turned off
        return None
    async with auth.pool.acquire() as conn, conn.transaction():
        user = await users.sign_up(
            conn, outcome.email, [str(a) for a in auth.settings.bootstrap_admins]
        )
    return user if user.active else None


async def after_sign_in(
    auth: Auth, user: User, body: VerifyRequest, *, ip: str, device: str
) -> None:
    """Audit it, remember the device, and tell the address about a new one."""
    device_hash = auth.hasher("browser", body.browser)
    async with auth.pool.acquire() as conn, conn.transaction():
        seen = await user_queries.remember_device(conn, user.id, device_hash)
        await audit.record(
            conn,
            "sign_in",
            user_id=user.id,
            ip=ip,
            method="code" if body.code else "link",
            new_device=seen == "new",
        )
        if seen == "new":
            await mail.enqueue(
                conn,
                "new_device",
                user.email,
                {"ip": ip, "device": device, "user_id": str(user.id)},
            )
    if seen == "new":
        auth.mail_wakeup.set()
