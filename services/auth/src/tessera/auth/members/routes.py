"""Sellers over HTTP for developers: sign a seller up, list one's sellers, manage members.

`/v1/sellers/sign-up` and its verify are public (rate-limited like sign-in links); the rest
take the developer's access token, and a `{slug}` in the path only picks one of the
caller's own sellers."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, Response

from tessera.auth.context import AuthDep
from tessera.auth.links.errors import CodeRequired, SignInFailed
from tessera.auth.links.routes import UnsafeNext
from tessera.auth.links.schemas import SignedIn, VerifyRequest, safe_next
from tessera.auth.members import service
from tessera.auth.members.schemas import (
    DashboardToken,
    DashboardTokenRequest,
    InviteAccept,
    InviteOut,
    InviteRequest,
    MemberList,
    Membership,
    Memberships,
    SellerSignUp,
    SellerUpdate,
    SignUpAccepted,
)
from tessera.auth.requests import client_ip, user_agent
from tessera.auth.sellers.schemas import SettingsPatch, Slug
from tessera.auth.sellers.service import SlugTaken
from tessera.shared.api_keys.dependencies import PlatformPlanInactive
from tessera.shared.events.auth import SellerSettings
from tessera.shared.http.openapi import problems
from tessera.shared.tokens import Forbidden, Principal, PrincipalDep

router = APIRouter(prefix="/v1/sellers", tags=["sellers"])


@router.post("/sign-up", status_code=202, responses=problems(SlugTaken, UnsafeNext))
async def sign_up(body: SellerSignUp, auth: AuthDep, request: Request) -> SignUpAccepted:
    """Mail a link that creates the seller (and the developer's account, if new) when it
    is verified. The same answer whether or not the address has an account."""
    if not safe_next(body.next, auth.settings.next_path_prefixes):
        raise UnsafeNext("`next` must be a relative path under an allowed prefix.")
    await service.request_sign_up(auth, body, ip=client_ip(request))
    return SignUpAccepted()


@router.post("/sign-up/verify", responses=problems(SignInFailed, CodeRequired, SlugTaken))
async def verify_sign_up(body: VerifyRequest, auth: AuthDep, request: Request) -> SignedIn:
    """Verify the sign-up link (or its code): the seller exists, the caller owns it, and
    is signed in. A slug taken meanwhile is a 409."""
    return await service.verify_sign_up(
        auth, body, ip=client_ip(request), device=user_agent(request)
    )


@router.post("/invites/accept", responses=problems(service.InviteInvalid))
async def accept_invite(body: InviteAccept, auth: AuthDep, request: Request) -> SignedIn:
    """Join the seller an invite names, and sign in."""
    return await service.accept_invite(
        auth, body.token, body.browser, ip=client_ip(request), device=user_agent(request)
    )


async def _developer(auth: AuthDep, principal: PrincipalDep) -> Principal:
    await auth.limiter.enforce(
        auth.settings.rl_sellers_per_user, "sellers-user", str(principal.user_id)
    )
    return principal


@router.get("/mine", responses=problems(Forbidden))
async def mine(auth: AuthDep, principal: PrincipalDep) -> Memberships:
    """The sellers the caller is a member of, with their role in each."""
    return Memberships(sellers=await service.mine(auth, await _developer(auth, principal)))


MEMBER_PROBLEMS = problems(service.NoSuchSeller, service.OwnerRequired, Forbidden)


@router.patch("/{slug}", responses=MEMBER_PROBLEMS)
async def update_seller(
    slug: Slug, body: SellerUpdate, auth: AuthDep, principal: PrincipalDep, request: Request
) -> Membership:
    """Rename the seller or open or close its customers' signup (owners only)."""
    caller = await _developer(auth, principal)
    return await service.update_seller(auth, caller, slug, body, ip=client_ip(request))


@router.get("/{slug}/settings", responses=MEMBER_PROBLEMS)
async def seller_settings(slug: Slug, auth: AuthDep, principal: PrincipalDep) -> SellerSettings:
    """The seller's settings, every field with its value or default (any member)."""
    return await service.settings(auth, await _developer(auth, principal), slug)


@router.patch("/{slug}/settings", responses=MEMBER_PROBLEMS)
async def update_settings(
    slug: Slug, body: SettingsPatch, auth: AuthDep, principal: PrincipalDep, request: Request
) -> SellerSettings:
    """Change settings (owners only): the fields named change, `null` takes one back to
    its default; the answer is the whole settings. Every service sees the change through
    the seller directory."""
    caller = await _developer(auth, principal)
    return await service.update_settings(auth, caller, slug, body, ip=client_ip(request))


@router.get("/{slug}/members", responses=MEMBER_PROBLEMS)
async def members(slug: Slug, auth: AuthDep, principal: PrincipalDep) -> MemberList:
    return await service.members(auth, await _developer(auth, principal), slug)


@router.post(
    "/{slug}/invites",
    status_code=201,
    responses=problems(
        service.NoSuchSeller, service.OwnerRequired, service.AlreadyMember, Forbidden
    ),
)
async def invite(
    slug: Slug, body: InviteRequest, auth: AuthDep, principal: PrincipalDep, request: Request
) -> InviteOut:
    """Invite an address to the seller (owners only); the invitee joins by the mailed link."""
    caller = await _developer(auth, principal)
    return await service.invite(auth, caller, slug, body, ip=client_ip(request))


@router.delete("/{slug}/invites/{invite_id}", status_code=204, responses=MEMBER_PROBLEMS)
async def revoke_invite(
    slug: Slug, invite_id: UUID, auth: AuthDep, principal: PrincipalDep, request: Request
) -> Response:
    caller = await _developer(auth, principal)
    await service.revoke_invite(auth, caller, slug, invite_id, ip=client_ip(request))
    return Response(status_code=204)


@router.delete(
    "/{slug}/members/{user_id}",
    status_code=204,
    responses=problems(service.NoSuchSeller, service.OwnerRequired, service.LastOwner, Forbidden),
)
async def remove_member(
    slug: Slug, user_id: UUID, auth: AuthDep, principal: PrincipalDep, request: Request
) -> Response:
    caller = await _developer(auth, principal)
    await service.remove_member(auth, caller, slug, user_id, ip=client_ip(request))
    return Response(status_code=204)


@router.post(
    "/{slug}/dashboard-token",
    responses=problems(service.NoSuchSeller, PlatformPlanInactive, Forbidden),
)
async def dashboard_token(
    slug: Slug,
    body: DashboardTokenRequest,
    auth: AuthDep,
    principal: PrincipalDep,
    request: Request,
) -> DashboardToken:
    """A short-lived seller-session token for a member (owner or developer) of the seller,
    in the mode asked: billing, licensing and auth accept it wherever the seller's secret
    key is accepted, for the same tenant (docs/sellers.md, "Dashboard sessions"). Live mode
    needs the seller's platform plan in force (402)."""
    caller = await _developer(auth, principal)
    return await service.dashboard_token(auth, caller, slug, body.mode, ip=client_ip(request))
