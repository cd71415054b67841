"""User verbs: create from an account (or a proven sign-up), roles, disable. A user is one
seller's customer in one mode (its tenant); admins and roles exist only at the home seller."""

from __future__ import annotations

import logging
from typing import Protocol
from uuid import UUID

import asyncpg

from tessera.auth.audit import service as audit
from tessera.auth.mail_queue import queries as mail
from tessera.auth.users import queries
from tessera.auth.users.errors import UserNotFound
from tessera.auth.users.schemas import Role, User
from tessera.shared import inbox, outbox
from tessera.shared.accounts import account_id_for
from tessera.shared.events.auth import UserCreated, UserDisabled
from tessera.shared.events.billing import AccountCreated
from tessera.shared.events.envelope import new_event_id
from tessera.shared.sellers import HOME_LIVE, Tenant

log = logging.getLogger("tessera.auth.users")

CONSUMER = "auth.users"


class Sessions(Protocol):
    """What disabling needs of the session store (`sessions/`, which sits above users)."""

    async def delete_all(self, user_id: UUID, keep: str | None = None) -> list[str]: ...


def initial_role(tenant: Tenant, email: str, bootstrap_admins: list[str]) -> Role:
    # Admins run the operator's own business: only a home-seller, live user can be one.
    if tenant != HOME_LIVE:
        return "customer"
    return "admin" if email.lower() in {a.lower() for a in bootstrap_admins} else "customer"


def created(user_id: UUID, account_id: UUID, email: str, role: Role, tenant: Tenant) -> UserCreated:
    return UserCreated(
        user_id=user_id,
        account_id=account_id,
        email=email,
        role=role,
        seller_id=tenant.seller_id,
        mode=tenant.mode,
    )


async def create_user_for_account(
    pool: asyncpg.Pool, event: AccountCreated, bootstrap_admins: list[str] | None = None
) -> UUID | None:
    """Create the account's user once, under the event's seller and mode, publish
    `auth.user.created.v1` and queue the welcome mail (with a sign-in link). Returns the new
    user's id, or None when the event was already applied (or the address already has a
    user at that seller, in that mode)."""
    tenant = event.tenant
    async with inbox.first_delivery(pool, event, CONSUMER) as conn:
        if conn is None:
            return None
        user_id = new_event_id()
        role = initial_role(tenant, event.email, bootstrap_admins or [])
        if not await queries.insert_if_absent(
            conn, tenant, user_id, event.account_id, event.email, role
        ):
            await _note_existing(conn, event)
            return None
        await outbox.add(conn, created(user_id, event.account_id, event.email, role, tenant))
        await mail.enqueue(conn, tenant, "welcome", event.email, {"user_id": str(user_id)})
        await audit.record(
            conn, "user.created", tenant, user_id=user_id, source=event.source, role=role
        )
        return user_id


async def _note_existing(conn: asyncpg.Connection, event: AccountCreated) -> None:
    """The address has a user already. With the same account id that is the expected race
    (the seller created the customer, or it signed up, while it was buying: both sides
    derived one id); with another id it is an account made before ids were derived, and
    the user keeps the one it has."""
    row = await queries.find_by_email(conn, event.tenant, event.email)
    same = row is not None and row["account_id"] == event.account_id
    (log.info if same else log.warning)(
        "auth.user.create.exists" if same else "auth.user.create.account_conflict",
        extra={
            "account_id": str(event.account_id),
            "existing_account_id": str(row["account_id"]) if row else None,
            "event_id": str(event.event_id),
        },
    )


async def sign_up(
    conn: asyncpg.Connection, tenant: Tenant, email: str, bootstrap_admins: list[str]
) -> User:
    """The user of an address that proved itself with a sign-up link (an open seller, or a
    developer signing up a seller at the home seller); the account id is the address's
    derived one (`account_id_for`).
    Idempotent on the address within the tenant."""
    existing = await queries.find_by_email(conn, tenant, email, for_update=True)
    if existing is not None:
        return User.of(existing)
    # Derived, not drawn: a purchase of the same address in billing makes the same id.
    user_id, account_id = new_event_id(), account_id_for(tenant, email)
    role = initial_role(tenant, email, bootstrap_admins)
    if not await queries.insert_if_absent(conn, tenant, user_id, account_id, email, role):
        # A concurrent sign-up of the same address won the unique index: theirs is the user.
        row = await queries.find_by_email(conn, tenant, email)
        assert row is not None
        return User.of(row)
    await outbox.add(conn, created(user_id, account_id, email, role, tenant))
    await audit.record(conn, "user.signed_up", tenant, user_id=user_id, role=role)
    row = await queries.find_by_id(conn, user_id)
    assert row is not None
    return User.of(row)


async def get_by_email(conn: asyncpg.Connection | asyncpg.Pool, tenant: Tenant, email: str) -> User:
    row = await queries.find_by_email(conn, tenant, email)
    if row is None:
        raise UserNotFound(f"No user has the address {email}.")
    return User.of(row)


async def get_by_id(conn: asyncpg.Connection | asyncpg.Pool, user_id: UUID) -> User:
    row = await queries.find_by_id(conn, user_id)
    if row is None:
        raise UserNotFound()
    return User.of(row)


async def get_in_tenant(
    conn: asyncpg.Connection | asyncpg.Pool, tenant: Tenant, user_id: UUID
) -> User:
    """The user, only if it is `tenant`'s (`UserNotFound` otherwise, as for no user)."""
    row = await queries.find_in_tenant(conn, tenant, user_id)
    if row is None:
        raise UserNotFound()
    return User.of(row)


async def set_role(
    pool: asyncpg.Pool, email: str, role: Role, *, actor: str = "operator-cli"
) -> tuple[User, bool]:
    """Make the address's home user an admin or a customer (operator CLI only: no HTTP
    route can change a role). Returns the user and whether anything changed; audited."""
    async with pool.acquire() as conn, conn.transaction():
        row = await queries.find_by_email(conn, HOME_LIVE, email, for_update=True)
        if row is None:
            raise UserNotFound(f"No user has the address {email}.")
        user = User.of(row)
        if user.role == role:
            return user, False
        await queries.set_role(conn, user.id, role)
        await audit.record(
            conn, "user.role_changed", HOME_LIVE, user_id=user.id, role=role, by=actor
        )
        return await get_by_id(conn, user.id), True


async def promote_bootstrap_admins(pool: asyncpg.Pool, emails: list[str]) -> int:
    """Settings' bootstrap admins who already exist at the home seller become admins."""
    if not emails:
        return 0
    async with pool.acquire() as conn, conn.transaction():
        rows = await queries.promote_emails(conn, HOME_LIVE, emails)
        for row in rows:
            await audit.record(
                conn,
                "user.role_changed",
                HOME_LIVE,
                user_id=row["id"],
                role="admin",
                by="bootstrap",
            )
    return len(rows)


async def disable(
    pool: asyncpg.Pool,
    sessions: Sessions,
    tenant: Tenant,
    user_id: UUID,
    *,
    actor_id: UUID | None = None,
    ip: str | None = None,
    reason: str | None = None,
) -> bool:
    """Disable `tenant`'s user: every session and device sign-in ends at once, no new one
    can start, and `auth.user.disabled.v1` is published. False if already disabled."""
    async with pool.acquire() as conn, conn.transaction():
        user = await get_in_tenant(conn, tenant, user_id)
        changed = await set_disabled_in(conn, user, True, actor_id=actor_id, ip=ip, reason=reason)
    # After the commit: a sign-in racing with this either committed its session before (and
    # is deleted here) or reads the user as disabled and opens none.
    await sessions.delete_all(user_id)
    return changed


async def enable(
    pool: asyncpg.Pool,
    tenant: Tenant,
    user_id: UUID,
    *,
    actor_id: UUID | None = None,
    ip: str | None = None,
    reason: str | None = None,
) -> bool:
    async with pool.acquire() as conn, conn.transaction():
        user = await get_in_tenant(conn, tenant, user_id)
        return await set_disabled_in(conn, user, False, actor_id=actor_id, ip=ip, reason=reason)


async def set_disabled_in(
    conn: asyncpg.Connection,
    user: User,
    disabled: bool,
    *,
    actor_id: UUID | None = None,
    ip: str | None = None,
    reason: str | None = None,
) -> bool:
    """Disable (the row, `auth.user.disabled.v1` and the audit entry) or enable `user` in
    the caller's transaction; after disabling, the caller ends the user's sessions once it
    has committed. False if the user already was so."""
    changed = await (queries.disable if disabled else queries.enable)(conn, user.id)
    if changed and disabled:
        event = UserDisabled(
            user_id=user.id,
            account_id=user.account_id,
            seller_id=user.tenant.seller_id,
            mode=user.tenant.mode,
        )
        await outbox.add(conn, event)
    if changed:
        extra = {"reason": reason} if reason else {}
        action = "user.disabled" if disabled else "user.enabled"
        await audit.record(
            conn, action, user.tenant, user_id=user.id, actor_id=actor_id, ip=ip, **extra
        )
    return changed


async def list_users(
    pool: asyncpg.Pool, tenant: Tenant, *, email: str | None, limit: int, offset: int
) -> list[User]:
    rows = await queries.page(pool, tenant, email=email, limit=limit, offset=offset)
    return [User.of(r) for r in rows]
