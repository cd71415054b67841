"""Magic-link verbs: accept a request (queue the mail that carries the link), verify. The
sender mints the link itself when it sends the mail (`mint.py`).

Every link belongs to one seller and mode (its tenant): it is asked for on that seller's
sign-in page, and the session it opens, and every token minted from that session, are for
the user of that address at that seller only."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from uuid import UUID

from tessera.auth.audit import service as audit
from tessera.auth.context import Auth
from tessera.auth.links.errors import CodeRequired, SignInFailed
from tessera.auth.links.mint import address_key
from tessera.auth.links.schemas import SignedIn, SignedInUser, VerifyRequest
from tessera.auth.links.store import Consumed, link_store
from tessera.auth.mail_queue import queries as mail
from tessera.auth.sellers import service as sellers
from tessera.auth.sessions import service as sessions
from tessera.auth.users import queries as user_queries
from tessera.auth.users import service as users
from tessera.auth.users.schemas import User
from tessera.shared.accounts import normalize_email
from tessera.shared.sellers import HOME_LIVE, Tenant

log = logging.getLogger("tessera.auth.links")

Resolve = Callable[[Auth, Consumed], Awaitable[User | None]]


async def enforce_request_limits(auth: Auth, addr: str, ip: str) -> None:
    """The limits of every request that mails a link (sign-in, seller sign-up)."""
    s = auth.settings
    await auth.limiter.enforce(s.rl_link_per_ip, "link-ip", ip)
    await auth.limiter.enforce(s.rl_link_per_address_burst, "link-addr-burst", addr)
    await auth.limiter.enforce(s.rl_link_per_address, "link-addr", addr)
    # Last: the global ceiling protects the sender's reputation, and must not be spent by
    # requests another limit refuses anyway.
    await auth.limiter.enforce(s.rl_link_global, "link-global")


async def request_link(
    auth: Auth, tenant: Tenant, email: str, next_path: str | None, browser: str, *, ip: str
) -> None:
    """Queue a sign-in mail for the address at `tenant`. The same work whether or not the
    address has a user (deciding that is the sender's job, off the request path), so
    neither the answer nor its timing tells the two apart."""
    address = normalize_email(email)
    await enforce_request_limits(auth, address_key(auth, tenant, address), ip)
    payload = {"next": next_path or "", "binding": auth.hasher("browser", browser)}
    async with auth.pool.acquire() as conn, conn.transaction():
        await mail.enqueue(conn, tenant, "sign_in", address, payload)
        await audit.record(conn, "link.requested", tenant, ip=ip, email=address)
    auth.mail_wakeup.set()


async def code_tenant(auth: Auth, body: VerifyRequest, key: Tenant | None) -> Tenant | None:
    """Whose sign-in a code-only verify finishes: the publishable key's seller and mode
    (the key that started it), else the seller whose sign-in page's slug it names (live),
    else the home seller's (live); None for an unknown slug."""
    if key is not None:
        return key
    if body.seller is None:
        return HOME_LIVE
    seller = await sellers.by_slug(auth.pool, body.seller)
    return None if seller is None else sellers.tenant_live(seller)


async def consume(auth: Auth, body: VerifyRequest, key: Tenant | None = None) -> Consumed:
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
        tenant = await code_tenant(auth, body, key)
        if tenant is None:
            return Consumed("invalid")
        current = await links.current(address_key(auth, tenant, normalize_email(body.email)))
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


async def verify(
    auth: Auth,
    body: VerifyRequest,
    *,
    ip: str,
    device: str,
    purpose: str = "sign_in",
    resolve: Resolve | None = None,
    key: Tenant | None = None,
) -> SignedIn:
    """Consume the link (or code) and open a session; `SignInFailed` for every failure,
    `CodeRequired` for a live link opened in another browser. Only a link minted for
    `purpose` is accepted; `resolve` turns it into the user to sign in. `key` is the tenant
    of the publishable key the caller sent, which a code-only verify finishes for."""
    await auth.limiter.enforce(auth.settings.rl_verify_per_ip, "verify-ip", ip)
    method = "code" if body.code else "link"
    outcome = await consume(auth, body, key)
    if outcome.outcome == "code_required":
        raise CodeRequired()
    if outcome.outcome != "ok":
        await audit.record(auth.pool, "sign_in.failed", HOME_LIVE, ip=ip, method=method)
        raise SignInFailed()
    if outcome.purpose != purpose:
        # A link of another kind, offered here: it stays usable where it belongs.
        await link_store(auth).restore(outcome)
        await audit.record(
            auth.pool, "sign_in.failed", outcome.tenant, ip=ip, method=method, reason="purpose"
        )
        raise SignInFailed()
    user: User | None = None
    opened: sessions.OpenedSession | None = None
    try:
        user = await (resolve or resolve_user)(auth, outcome)
        if user is None:
            await audit.record(
                auth.pool, "sign_in.failed", outcome.tenant, ip=ip, method=method, reason="user"
            )
            raise SignInFailed()
        opened = await sessions.open_browser_session(auth, user, ip=ip, device=device)
        await after_sign_in(auth, user, body.browser, method=method, ip=ip, device=device)
    except SignInFailed:
        raise
    except Exception:
        # The link was consumed for a sign-in that did not happen: undo the half-made
        # session and put the link back, so a retry works instead of saying "expired".
        await _undo(auth, outcome, opened, user)
        raise
    return signed_in(auth, user, opened, outcome.next or None)


def signed_in(
    auth: Auth, user: User, opened: sessions.OpenedSession, next_path: str | None
) -> SignedIn:
    return SignedIn(
        session_id=opened.session_id,
        session=opened.handle,
        idle_timeout=opened.expires_in,
        expires_at=datetime.fromtimestamp(
            time.time() + auth.settings.session_absolute_seconds, UTC
        ),
        next=next_path,
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
    """The user a sign-in link signs in: the link's user (still active, still the link's
    seller's), or, for a link minted for an unknown address, a new user, if the link's
    seller has open signup now (a sign-up link minted before signup closed does nothing)."""
    tenant = outcome.tenant
    if outcome.user_id:
        user = await sessions.active_user(auth, UUID(outcome.user_id))
        return user if user is not None and user.tenant == tenant else None
    seller = await sellers.by_id(auth.pool, tenant.seller_id)
    if seller is None or seller.status != "active" or seller.signup_policy != "open":
        return None
    async with auth.pool.acquire() as conn, conn.transaction():
        user = await users.sign_up(
            conn, tenant, outcome.email, [str(a) for a in auth.settings.bootstrap_admins]
        )
    return user if user.active else None


async def after_sign_in(
    auth: Auth, user: User, browser: str, *, method: str, ip: str, device: str
) -> None:
    """Audit it, remember the device, and tell the address about a new one."""
    device_hash = auth.hasher("browser", browser)
    async with auth.pool.acquire() as conn, conn.transaction():
        seen = await user_queries.remember_device(conn, user.tenant, user.id, device_hash)
        await audit.record(
            conn,
            "sign_in",
            user.tenant,
            user_id=user.id,
            ip=ip,
            method=method,
            new_device=seen == "new",
        )
        if seen == "new":
            await mail.enqueue(
                conn,
                user.tenant,
                "new_device",
                user.email,
                {"ip": ip, "device": device, "user_id": str(user.id)},
            )
    if seen == "new":
        auth.mail_wakeup.set()
