"""The seller dashboard, first slice (docs/portal.md, "Seller"): the sellers a person is a
member of, a seller's onboarding checklist with a test/live switch, and its API keys.

The portal never holds a seller's key. It reads a member's sellers and manages keys with
the person's own access token at auth's member routes, and reads billing's seller API with
a seller-session token auth mints for that member, seller and mode (docs/sellers.md,
"Dashboard sessions"). Auth and billing decide who may see what; a person who is not a
member of a seller, or a customer, gets the plain 404 page."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from typing import Annotated, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Query, Request, Response

from tessera.portal.context import Portal, PortalDep
from tessera.portal.upstream.auth import Membership, NewPair, SellerAuth, SellerKey
from tessera.portal.upstream.base import UpstreamError
from tessera.portal.upstream.billing import SellerBilling
from tessera.portal.web.errors import PageNotFound
from tessera.portal.web.pages import limit_posts, redirect, render, require_csrf
from tessera.portal.web.viewer import Viewer, ViewerDep
from tessera.shared.sellers import HOME_LIVE

router = APIRouter(prefix="/seller", dependencies=[Depends(require_csrf)])

T = TypeVar("T")
Mode = Literal["test", "live"]
# A seller's slug as auth defines it (docs/sellers.md, "Identity").
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{2,39}$")
# A rotation's overlap, as offered: auth allows 0 to 7 days.
OVERLAPS = {0: "Stop the old keys now", 3600: "1 hour", 86400: "24 hours", 604800: "7 days"}
NOTICES = {"revoked": "The key pair was revoked: both keys stopped working."}


async def post_limit(request: Request, portal: PortalDep) -> None:
    await limit_posts(request, portal.settings.rl_post_per_ip, "post-ip")


PostLimit = Depends(post_limit)


def members_api(portal: Portal) -> SellerAuth:
    return SellerAuth(portal.auth.up)


async def memberships(portal: Portal, viewer: Viewer) -> list[Membership]:
    """The sellers the viewer is a member of; a 404 for anyone who is a member of none (a
    customer learns nothing of these pages)."""
    if viewer.principal.tenant != HOME_LIVE:
        raise PageNotFound()  # another seller's customer: never a member (auth would 403)
    api, caller = members_api(portal), viewer.caller
    try:
        found = await viewer.call(lambda t: api.mine(caller, t))
    except UpstreamError as error:
        if error.status in (403, 404):
            raise PageNotFound() from None
        raise
    if not found:
        raise PageNotFound()
    return found


async def member_of(portal: Portal, viewer: Viewer, slug: str) -> Membership:
    """The viewer's membership of `slug`; any other slug is the 404 page, as at auth."""
    if not SLUG.match(slug):
        raise PageNotFound()
    for membership in await memberships(portal, viewer):
        if membership.slug == slug:
            return membership
    raise PageNotFound()


async def not_yet(action: Awaitable[T]) -> T | None:
    """What the page cannot know yet (a refused live session, say) reads "not yet"."""
    try:
        return await action
    except UpstreamError as error:
        if error.unavailable:
            raise
        return None


@router.get("")
async def sellers(request: Request, portal: PortalDep, viewer: ViewerDep) -> Response:
    return render(request, "seller/list.html", sellers=await memberships(portal, viewer))


@router.get("/{slug}")
async def overview(
    request: Request,
    slug: str,
    portal: PortalDep,
    viewer: ViewerDep,
    mode: Annotated[Mode, Query()] = "test",
) -> Response:
    membership = await member_of(portal, viewer, slug)
    api, billing, caller = members_api(portal), SellerBilling(portal.billing.up), viewer.caller
    keys = await viewer.call(lambda t: api.keys(caller, t, slug))
    # The plan is read with a test session: it works with or without a plan.
    test_session = await viewer.call(lambda t: api.dashboard_token(caller, t, slug, "test"))
    session = test_session if mode == "test" else None
    if mode == "live":
        live = await not_yet(viewer.call(lambda t: api.dashboard_token(caller, t, slug, "live")))
        session = live
    plan, connected, tiers = await asyncio.gather(
        billing.plan(caller, test_session.access_token),
        not_yet(billing.stripe_connected(caller, session.access_token)) if session else none(),
        not_yet(billing.tier_count(caller, session.access_token)) if session else none(),
    )
    mode_keys = [k for k in keys if k.mode == mode]
    called = any(k.last_used_at for k in keys if k.mode == "test" and k.kind == "secret")
    checklist = [
        ("Platform plan", plan.in_force, "Needed for live mode; test mode works without it."),
        ("Stripe connected", connected, f"A Stripe account connected in {mode} mode."),
        ("First tier", None if tiers is None else tiers > 0, f"A tier for sale in {mode} mode."),
        ("First key", bool(mode_keys), f"A {mode} key pair."),
        ("First test call", called, "A call with a test secret key (seen within a minute)."),
    ]
    return render(
        request, "seller/overview.html", seller=membership, mode=mode, checklist=checklist,
        live_refused=mode == "live" and session is None,
    )  # fmt: skip


async def none() -> None:
    return None


@router.get("/{slug}/keys")
async def keys(
    request: Request,
    slug: str,
    portal: PortalDep,
    viewer: ViewerDep,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    membership = await member_of(portal, viewer, slug)
    api, caller = members_api(portal), viewer.caller
    found = await viewer.call(lambda t: api.keys(caller, t, slug))
    return render(
        request, "seller/keys.html", seller=membership, by_mode=pairs_by_mode(found),
        overlaps=OVERLAPS, notice=NOTICES.get(done or ""),
    )  # fmt: skip


def pairs_by_mode(found: list[SellerKey]) -> dict[str, list[list[SellerKey]]]:
    """Each mode's pairs (publishable first), newest first: the page lists test and live
    apart, never mixed."""
    pairs: dict[UUID, list[SellerKey]] = {}
    for key in sorted(found, key=lambda k: (k.created_at, k.kind), reverse=True):
        pairs.setdefault(key.pair_id, []).append(key)
    out: dict[str, list[list[SellerKey]]] = {"test": [], "live": []}
    for pair in pairs.values():
        out[pair[0].mode].append(sorted(pair, key=lambda k: k.kind != "publishable"))
    return out


KeyName = Annotated[str, Form(min_length=1, max_length=60)]


@router.post("/{slug}/keys", dependencies=[PostLimit])
async def create_keys(
    request: Request,
    slug: str,
    portal: PortalDep,
    viewer: ViewerDep,
    name: KeyName,
    mode: Annotated[Mode, Form()],
) -> Response:
    membership = await member_of(portal, viewer, slug)
    api, caller = members_api(portal), viewer.caller
    pair = await viewer.call(lambda t: api.create_keys(caller, t, slug, name.strip(), mode))
    return shown_once(request, membership, pair, rotated=False)


@router.post("/{slug}/keys/{pair_id}/rotate", dependencies=[PostLimit])
async def rotate_keys(
    request: Request,
    slug: str,
    pair_id: UUID,
    portal: PortalDep,
    viewer: ViewerDep,
    overlap: Annotated[int, Form()],
) -> Response:
    if overlap not in OVERLAPS:
        raise PageNotFound()
    membership = await member_of(portal, viewer, slug)
    api, caller = members_api(portal), viewer.caller
    pair = await viewer.call(lambda t: api.rotate_keys(caller, t, slug, pair_id, overlap))
    return shown_once(request, membership, pair, rotated=True, overlap=OVERLAPS[overlap])


@router.post("/{slug}/keys/{pair_id}/revoke", dependencies=[PostLimit])
async def revoke_keys(
    request: Request, slug: str, pair_id: UUID, portal: PortalDep, viewer: ViewerDep
) -> Response:
    await member_of(portal, viewer, slug)
    api, caller = members_api(portal), viewer.caller
    await viewer.call(lambda t: api.revoke_keys(caller, t, slug, pair_id))
    return redirect(request, f"/seller/{slug}/keys", done="revoked")


def shown_once(
    request: Request, seller: Membership, pair: NewPair, *, rotated: bool, overlap: str = ""
) -> Response:
    """The new keys, this once: the answer of a POST (never a page a GET could show
    again), with `no-store` like every page."""
    return render(
        request, "seller/key_created.html", seller=seller, pair=pair, rotated=rotated,
        overlap=overlap,
    )  # fmt: skip
