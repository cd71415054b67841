"""Member verbs: sign a seller up (request, then the verified link makes the seller and its
owner), list the caller's sellers, invite, join, list and remove members.

Who may act on a seller comes from the caller's access token (a home-seller user, signed
in) and their membership row; a slug in a path only picks which of the caller's own sellers
is meant, so naming someone else's slug reads as "no such seller"."""

from __future__ import annotations

import logging
from typing import Literal
from uuid import UUID

from tessera.auth.audit import service as audit
from tessera.auth.context import Auth
from tessera.auth.links import service as links
from tessera.auth.links.mint import address_key
from tessera.auth.links.schemas import SignedIn, VerifyRequest
from tessera.auth.links.store import Consumed
from tessera.auth.mail_queue import queries as mail
from tessera.auth.members import queries
from tessera.auth.members.schemas import (
    DashboardToken,
    InviteOut,
    InviteRequest,
    MemberList,
    MemberOut,
    Membership,
    SellerSignUp,
    SellerUpdate,
)
from tessera.auth.sellers import service as sellers
from tessera.auth.sellers.schemas import SettingsPatch
from tessera.auth.sellers.service import Seller, SlugTaken
from tessera.auth.sessions import service as sessions
from tessera.auth.tokens import service as tokens
from tessera.auth.users import queries as user_queries
from tessera.auth.users import service as users
from tessera.auth.users.schemas import User
from tessera.shared import inbox
from tessera.shared.accounts import normalize_email
from tessera.shared.api_keys.book import SellerCredential
from tessera.shared.api_keys.dependencies import require_plan
from tessera.shared.events.auth import SellerSettings
from tessera.shared.events.envelope import new_event_id
from tessera.shared.events.webhooks import EndpointDisabled
from tessera.shared.http.problems import NotFound, Problem
from tessera.shared.sellers import HOME_LIVE, HOME_SELLER_ID, Tenant
from tessera.shared.tokens import Forbidden, Principal

log = logging.getLogger("tessera.auth.members")

# The inbox consumer of webhooks' events (a redelivered event mails no one twice).
WEBHOOKS_CONSUMER = "auth.webhook_notices"

# Slugs that read as words of the API rather than as a seller.
RESERVED_SLUGS = frozenset({"mine", "sign-up", "invites", "admin", "api", "www", "home"})


class NoSuchSeller(NotFound):
    """Not a seller the caller is a member of (whether or not it exists)."""

    slug = "unknown-seller"
    title = "Unknown seller"

    def __init__(self) -> None:
        super().__init__("You are not a member of a seller with this slug.")


class OwnerRequired(Problem):
    status = 403
    slug = "owner-required"
    title = "Owner required"

    def __init__(self) -> None:
        super().__init__("Only an owner of the seller may do this.")


class LastOwner(Problem):
    status = 409
    slug = "last-owner"
    title = "Last owner"

    def __init__(self) -> None:
        super().__init__("A seller keeps at least one owner; make another owner first.")


class AlreadyMember(Problem):
    status = 409
    slug = "already-member"
    title = "Already a member"

    def __init__(self) -> None:
        super().__init__("This address is a member of the seller already.")


class InviteInvalid(Problem):
    """One answer for an invite that never existed, was used, revoked or expired, or whose
    address belongs to a disabled user."""

    status = 401
    slug = "invite-invalid"
    title = "Invite invalid"

    def __init__(self) -> None:
        super().__init__("The invite is invalid or has expired. Ask for a new one.")


def seller_tenant(seller_id: UUID) -> Tenant:
    # Member actions are audited as the seller's own (its live data's) history.
    return Tenant(seller_id, "live")


async def slug_available(auth: Auth, slug: str) -> bool:
    if slug in RESERVED_SLUGS and slug != auth.settings.home_seller_slug:
        return False
    return await sellers.slug_free(auth.pool, slug)


async def request_sign_up(auth: Auth, body: SellerSignUp, *, ip: str) -> None:
    """Queue the mail whose link creates the seller. A taken slug is refused now (409) and
    checked again when the link is verified; the address is not looked at here, so the
    answer is the same whether or not it has an account."""
    if body.slug in RESERVED_SLUGS or not await slug_available(auth, body.slug):
        raise SlugTaken()
    address = normalize_email(body.email)
    await links.enforce_request_limits(auth, address_key(auth, HOME_LIVE, address), ip)
    payload = {
        "name": body.name,
        "slug": body.slug,
        "next": body.next or "",
        "binding": auth.hasher("browser", body.browser),
    }
    async with auth.pool.acquire() as conn, conn.transaction():
        await mail.enqueue(conn, HOME_LIVE, "seller_sign_up", address, payload)
        await audit.record(
            conn, "seller.sign_up_requested", HOME_LIVE, ip=ip, email=address, slug=body.slug
        )
    auth.mail_wakeup.set()


async def verify_sign_up(auth: Auth, body: VerifyRequest, *, ip: str, device: str) -> SignedIn:
    """Verify a seller sign-up link: make the home user if missing, the seller and the owner
    membership in one transaction, then sign the developer in."""
    return await links.verify(
        auth, body, ip=ip, device=device, purpose="seller_sign_up", resolve=create_from_sign_up
    )


async def create_from_sign_up(auth: Auth, outcome: Consumed) -> User | None:
    slug, name = str(outcome.data.get("slug", "")), str(outcome.data.get("name", ""))
    if slug in RESERVED_SLUGS:
        raise SlugTaken()
    admins = [str(a) for a in auth.settings.bootstrap_admins]
    async with auth.pool.acquire() as conn, conn.transaction():
        user = await users.sign_up(conn, HOME_LIVE, outcome.email, admins)
        if not user.active:
            return None
        seller = await sellers.create(conn, new_event_id(), slug, name)
        await queries.add_member(conn, seller.id, user.id, "owner")
        await audit.record(
            conn,
            "seller.created",
            seller_tenant(seller.id),
            user_id=user.id,
            actor_id=user.id,
            slug=slug,
        )
        await audit.record(
            conn,
            "member.added",
            seller_tenant(seller.id),
            user_id=user.id,
            actor_id=user.id,
            role="owner",
        )
    auth.sellers.apply(seller.record())
    log.info("auth.seller.created", extra={"slug": slug})
    return user


def require_developer(principal: Principal) -> None:
    """Members are home-seller users: a customer token of any other seller (or a test-mode
    one) is refused here, whatever it names."""
    if principal.tenant != HOME_LIVE:
        raise Forbidden("Sign in as a developer (at the home seller) to manage sellers.")


async def membership(auth: Auth, principal: Principal, slug: str) -> tuple[Seller, str]:
    """The caller's seller with this slug and their role in it; `NoSuchSeller` if the
    caller is not a member (the slug names only among the caller's own sellers)."""
    require_developer(principal)
    await sessions.require_live(auth, principal)
    seller = await sellers.by_slug(auth.pool, slug)
    role = await queries.role_of(auth.pool, seller.id, principal.user_id) if seller else None
    if seller is None or role is None:
        raise NoSuchSeller()
    return seller, role


async def owned(auth: Auth, principal: Principal, slug: str) -> Seller:
    seller, role = await membership(auth, principal, slug)
    if role != "owner":
        raise OwnerRequired()
    return seller


async def mine(auth: Auth, principal: Principal) -> list[Membership]:
    require_developer(principal)
    await sessions.require_live(auth, principal)
    rows = await queries.sellers_of(auth.pool, principal.user_id)
    return [Membership.of(r) for r in rows]


async def invite(
    auth: Auth, principal: Principal, slug: str, body: InviteRequest, *, ip: str
) -> InviteOut:
    """Invite an address (an owner only); replaces that address's open invite, if any."""
    seller = await owned(auth, principal, slug)
    address = normalize_email(body.email)
    async with auth.pool.acquire() as conn, conn.transaction():
        existing = await user_queries.find_by_email(conn, HOME_LIVE, address)
        if existing is not None and await queries.role_of(conn, seller.id, existing["id"]):
            raise AlreadyMember()
        await queries.revoke_open_invites_for(conn, seller.id, address)
        row = await queries.insert_invite(
            conn, new_event_id(), seller.id, address, body.role, principal.user_id,
            auth.settings.invite_ttl_seconds,
        )  # fmt: skip
        await mail.enqueue(conn, HOME_LIVE, "seller_invite", address, {"invite_id": str(row["id"])})
        await audit.record(
            conn, "member.invited", seller_tenant(seller.id), actor_id=principal.user_id, ip=ip,
            email=address, role=body.role, invite_id=str(row["id"]),
        )  # fmt: skip
    auth.mail_wakeup.set()
    return InviteOut(**dict(row))


async def members(auth: Auth, principal: Principal, slug: str) -> MemberList:
    """Members and open invites (any member may read them)."""
    seller, _ = await membership(auth, principal, slug)
    rows = await queries.members_of(auth.pool, seller.id)
    pending = await queries.open_invites(auth.pool, seller.id)
    return MemberList(
        members=[MemberOut(**dict(r)) for r in rows],
        invites=[InviteOut(**dict(r)) for r in pending],
    )


async def remove_member(
    auth: Auth, principal: Principal, slug: str, user_id: UUID, *, ip: str
) -> None:
    """Remove a member (an owner only; an owner may remove themself); the last owner stays."""
    seller = await owned(auth, principal, slug)
    async with auth.pool.acquire() as conn, conn.transaction():
        current = {r["user_id"]: r["role"] for r in await queries.lock_members(conn, seller.id)}
        if user_id not in current:
            raise NotFound("No such member.")
        owners = [u for u, role in current.items() if role == "owner"]
        if current[user_id] == "owner" and len(owners) == 1:
            raise LastOwner()
        await queries.remove_member(conn, seller.id, user_id)
        await audit.record(
            conn, "member.removed", seller_tenant(seller.id), user_id=user_id,
            actor_id=principal.user_id, ip=ip,
        )  # fmt: skip


async def revoke_invite(
    auth: Auth, principal: Principal, slug: str, invite_id: UUID, *, ip: str
) -> None:
    seller = await owned(auth, principal, slug)
    async with auth.pool.acquire() as conn, conn.transaction():
        if not await queries.revoke_invite(conn, seller.id, invite_id):
            raise NotFound("No such open invite.")
        await audit.record(
            conn, "member.invite_revoked", seller_tenant(seller.id), actor_id=principal.user_id,
            ip=ip, invite_id=str(invite_id),
        )  # fmt: skip


async def accept_invite(auth: Auth, token: str, browser: str, *, ip: str, device: str) -> SignedIn:
    """Join a seller by an invite's link: the address proves itself by holding the token
    mailed to it; the home user is made if missing; then the invitee is signed in."""
    await auth.limiter.enforce(auth.settings.rl_verify_per_ip, "verify-ip", ip)
    admins = [str(a) for a in auth.settings.bootstrap_admins]
    async with auth.pool.acquire() as conn, conn.transaction():
        invite_row = await queries.take_invite(conn, auth.hasher("invite", token))
        if invite_row is None:
            user = None
        else:
            user = await users.sign_up(conn, HOME_LIVE, invite_row["email"], admins)
            if user.active:
                seller_id = invite_row["seller_id"]
                await queries.add_member(conn, seller_id, user.id, invite_row["role"])
                await audit.record(
                    conn, "member.added", seller_tenant(seller_id), user_id=user.id,
                    actor_id=invite_row["invited_by"], ip=ip, role=invite_row["role"],
                    invite_id=str(invite_row["id"]),
                )  # fmt: skip
            else:
                user = None
        if user is None:
            # Roll back the acceptance (a disabled user's invite stays open for an owner to
            # revoke) and answer as for any bad invite.
            raise InviteInvalid()
    opened = await sessions.open_browser_session(auth, user, ip=ip, device=device)
    await links.after_sign_in(auth, user, browser, method="invite", ip=ip, device=device)
    return links.signed_in(auth, user, opened, None)


async def update_seller(
    auth: Auth, principal: Principal, slug: str, body: SellerUpdate, *, ip: str
) -> Membership:
    """Rename the seller or change its signup policy (an owner only); published to the
    directory and audited."""
    seller = await owned(auth, principal, slug)
    async with auth.pool.acquire() as conn, conn.transaction():
        changed = await sellers.update(
            conn, seller, name=body.name, signup_policy=body.signup_policy
        )
        if changed is not seller:
            await audit.record(
                conn, "seller.updated", seller_tenant(seller.id), actor_id=principal.user_id,
                ip=ip, **body.model_dump(exclude_none=True),
            )  # fmt: skip
    auth.sellers.apply(changed.record())
    rows = await queries.sellers_of(auth.pool, principal.user_id)
    return Membership.of(next(r for r in rows if r["id"] == seller.id))


async def settings(auth: Auth, principal: Principal, slug: str) -> SellerSettings:
    """The seller's settings (any member may read them)."""
    seller, _ = await membership(auth, principal, slug)
    return seller.settings


async def update_settings(
    auth: Auth, principal: Principal, slug: str, body: SettingsPatch, *, ip: str
) -> SellerSettings:
    """Merge the body into the seller's settings (an owner only); a change is published to
    the directory and audited with the names of the fields it changed."""
    seller = await owned(auth, principal, slug)
    async with auth.pool.acquire() as conn, conn.transaction():
        changed, fields = await sellers.update_settings(conn, seller.id, body.changes())
        if fields:
            await audit.record(
                conn, "seller.settings_changed", seller_tenant(seller.id),
                actor_id=principal.user_id, ip=ip, fields=fields,
            )  # fmt: skip
    if fields:
        auth.sellers.apply(changed.record())
    return changed.settings


async def mail_endpoint_disabled(auth: Auth, event: EndpointDisabled) -> int:
    """Queue a mail to each active owner of the endpoint's seller, once per event (inbox):
    the endpoint was disabled after failing for days. Returns how many were queued."""
    payload = {
        "seller_id": str(event.seller_id), "mode": event.mode,
        "endpoint_id": str(event.endpoint_id), "url": event.url,
        "description": event.description, "failing_since": event.failing_since.isoformat(),
    }  # fmt: skip
    async with inbox.first_delivery(auth.pool, event, WEBHOOKS_CONSUMER) as conn:
        if conn is None:
            return 0
        owners = await queries.active_owner_emails(conn, event.seller_id)
        for address in owners:
            # Owners are home users: the mail is the platform's, about their seller.
            await mail.enqueue(conn, HOME_LIVE, "webhook_endpoint_disabled", address, payload)
    auth.mail_wakeup.set()
    return len(owners)


async def dashboard_token(
    auth: Auth, principal: Principal, slug: str, mode: Literal["test", "live"], *, ip: str
) -> DashboardToken:
    """A short-lived seller-session token for a member of `slug` (docs/sellers.md,
    "Dashboard sessions"). Live mode only while the seller's plan is in force, as for its
    live keys (402, the same problem); a non-member's slug is a 404."""
    seller, role = await membership(auth, principal, slug)
    if mode == "live" and seller.id != HOME_SELLER_ID:
        # The same directory check every service makes for the token later.
        require_plan(auth.sellers, SellerCredential(seller.id, principal.user_id, "secret", mode))
    minted = await tokens.mint_seller_session(
        auth, principal.user_id, seller.slug, role, mode, principal.session_id
    )
    # Which member opened a session for which seller and mode, when: billing's and
    # licensing's own audits then name the member for what the session did.
    await audit.record(
        auth.pool, "seller.dashboard_session", Tenant(seller.id, mode),
        actor_id=principal.user_id, ip=ip, role=role, session=principal.session_id,
    )  # fmt: skip
    return DashboardToken(
        access_token=minted.token, expires_in=minted.expires_in, slug=seller.slug, mode=mode,
        role="owner" if role == "owner" else "developer",
    )  # fmt: skip
