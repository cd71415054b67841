"""Customer pages. Each reads from the owning service with the person's access token; the
portal decides nothing about who may see what (the services do)."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Query, Request, Response

from tessera.portal.context import PortalDep
from tessera.portal.upstream.base import UpstreamError
from tessera.portal.upstream.licensing import License
from tessera.portal.web.pages import (
    drop_session_cookie,
    is_htmx,
    limit_posts,
    redirect,
    render,
    require_csrf,
)
from tessera.portal.web.viewer import ViewerDep, forget, mark_revoked

router = APIRouter(dependencies=[Depends(require_csrf)])

# A user code: 8 letters, any case, with or without the dash (auth normalises it).
USER_CODE = re.compile(r"^[A-Za-z]{4}-?[A-Za-z]{4}$")
HANDLE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")

# Fixed messages a redirect may ask for (`?done=`): never text taken from the URL.
NOTICES = {
    "machine-removed": "The machine was removed; its seat is free.",
    "session-revoked": "That session was signed out.",
    "approved": "Approved. Go back to the app: it will finish signing in by itself.",
    "denied": "Denied. The app will not be signed in.",
}

# Licensing's `status_reason` values, in words a customer understands.
REASONS = {
    "refunded": "the order was refunded",
    "dispute_lost": "the payment was reversed by the bank (a lost dispute)",
    "disputed": "a payment dispute is open; it is restored if the dispute is won",
    "admin": "by our support team; reply to any of our emails to ask why",
}


async def post_limit(request: Request, portal: PortalDep) -> None:
    await limit_posts(request, portal.settings.rl_post_per_ip, "post-ip")


PostLimit = Depends(post_limit)
Done = Annotated[str | None, Query(max_length=40)]


def notice(done: str | None) -> str | None:
    return NOTICES.get(done or "")


def explain(license: License) -> str | None:
    """Why a license does not work, in words a customer understands."""
    if license.status == "active":
        return None
    lead = {"suspended": "This license is suspended", "revoked": "This license was revoked"}.get(
        license.status, f"This license is {license.status}"
    )
    reason = REASONS.get(license.status_reason or "")
    return f"{lead}: {reason}." if reason else f"{lead}."


@router.get("/licenses")
async def licenses(
    request: Request, portal: PortalDep, viewer: ViewerDep, done: Done = None
) -> Response:
    caller = viewer.caller
    found, orders, names = await asyncio.gather(
        viewer.call(lambda t: portal.licensing.my_licenses(caller, t)),
        viewer.call(lambda t: portal.billing.my_orders(caller, t)),
        portal.names.refresh(portal.billing, caller),
    )
    return render(
        request,
        "account/licenses.html",
        licenses=found,
        orders=orders[:3],
        names=names,
        explain=explain,
        notice=notice(done),
    )


@router.post("/licenses/{license_id}/machines/{activation_id}/remove", dependencies=[PostLimit])
async def remove_machine(
    request: Request, license_id: UUID, activation_id: UUID, portal: PortalDep, viewer: ViewerDep
) -> Response:
    caller = viewer.caller
    try:
        await viewer.call(
            lambda t: portal.licensing.remove_machine(caller, t, license_id, activation_id)
        )
    except UpstreamError as error:
        if error.status != 404:  # already gone (a second click): the outcome is the same
            raise
    if is_htmx(request):
        return render(request, "account/machine_removed.html")
    return redirect(request, "/licenses", done="machine-removed")


@router.get("/orders")
async def orders(request: Request, portal: PortalDep, viewer: ViewerDep) -> Response:
    caller = viewer.caller
    found, names = await asyncio.gather(
        viewer.call(lambda t: portal.billing.my_orders(caller, t)),
        portal.names.refresh(portal.billing, caller),
    )
    return render(request, "account/orders.html", orders=found, names=names, portal_error=None)


@router.post("/orders/billing-portal", dependencies=[PostLimit])
async def billing_portal(request: Request, portal: PortalDep, viewer: ViewerDep) -> Response:
    caller = viewer.caller
    try:
        url = await viewer.call(lambda t: portal.billing.billing_portal(caller, t))
    except UpstreamError as error:
        if error.status != 409:
            raise
        found = await viewer.call(lambda t: portal.billing.my_orders(caller, t))
        return render(
            request,
            "account/orders.html",
            status_code=409,
            orders=found,
            names=await portal.names.refresh(portal.billing, caller),
            portal_error="Stripe's billing page is not available for this account; "
            "your receipts are listed here.",
        )
    if not url.startswith(portal.settings.stripe_portal_origin + "/"):
        # Only Stripe's own page: the CSP's form-action allows nothing else either.
        raise UpstreamError("billing", 502, detail="unexpected billing-portal URL")
    return Response(status_code=303, headers={"location": url, "cache-control": "no-store"})


# --- desktop sign-in (RFC 8628) -----------------------------------------------------------


def sign_in_again(request: Request, error: UpstreamError) -> Response | None:
    """Auth approves a device only for a recent browser sign-in: an older one is sent to
    sign in again, and comes back to this page."""
    if error.status == 403 and error.slug == "reauthentication-required":
        return redirect(request, "/sign-in", next="/device", again="device")
    return None


@router.get("/device")
async def device_form(request: Request, viewer: ViewerDep, done: Done = None) -> Response:
    return render(request, "account/device.html", grant=None, error=None, notice=notice(done))


@router.post("/device", dependencies=[PostLimit])
async def device_lookup(
    request: Request,
    portal: PortalDep,
    viewer: ViewerDep,
    user_code: Annotated[str, Form(max_length=20)],
) -> Response:
    code = user_code.strip().upper()
    if not USER_CODE.match(code):
        return render(
            request,
            "account/device.html",
            status_code=400,
            grant=None,
            error="Enter the 8 letters the app shows, like BCDF-GHJK.",
        )
    caller = viewer.caller
    try:
        grant = await viewer.call(lambda t: portal.auth.device_lookup(caller, t, code))
    except UpstreamError as error:
        if again := sign_in_again(request, error):
            return again
        if error.status == 404:
            return render(
                request,
                "account/device.html",
                status_code=404,
                grant=None,
                error="That code is not valid. Check it against the app; codes last 10 minutes.",
            )
        raise
    return render(request, "account/device.html", grant=grant, user_code=code, error=None)


@router.post("/device/decision", dependencies=[PostLimit])
async def device_decision(
    request: Request,
    portal: PortalDep,
    viewer: ViewerDep,
    user_code: Annotated[str, Form(max_length=20)],
    decision: Annotated[Literal["approve", "deny"], Form()],
) -> Response:
    code = user_code.strip().upper()
    if not USER_CODE.match(code):
        return redirect(request, "/device")
    caller = viewer.caller
    try:
        await viewer.call(lambda t: portal.auth.device_decide(caller, t, code, decision))
    except UpstreamError as error:
        if again := sign_in_again(request, error):
            return again
        if error.status == 404:
            return render(
                request,
                "account/device.html",
                status_code=404,
                grant=None,
                error="That code has expired or was already used. Start again in the app.",
            )
        raise
    return redirect(request, "/device", done="approved" if decision == "approve" else "denied")


# --- sessions -----------------------------------------------------------------------------


@router.get("/account/sessions")
async def sessions(
    request: Request, portal: PortalDep, viewer: ViewerDep, done: Done = None
) -> Response:
    caller = viewer.caller
    found = await viewer.call(lambda t: portal.auth.sessions(caller, t))
    return render(request, "account/sessions.html", sessions=found, notice=notice(done))


@router.post("/account/sessions/{handle}/revoke", dependencies=[PostLimit])
async def revoke_session(
    request: Request, handle: str, portal: PortalDep, viewer: ViewerDep
) -> Response:
    if not HANDLE.match(handle):
        return redirect(request, "/account/sessions")
    current = handle == viewer.principal.session_id
    caller = viewer.caller
    try:
        await viewer.call(lambda t: portal.auth.revoke_session(caller, t, handle))
    except UpstreamError as error:
        if error.status != 404:
            raise
    await mark_revoked(portal, session=handle)
    if current:
        await forget(portal, viewer.session_id)
        response = redirect(request, "/sign-in")
        drop_session_cookie(portal, response)
        return response
    if is_htmx(request):
        return render(request, "account/session_revoked.html")
    return redirect(request, "/account/sessions", done="session-revoked")


@router.post("/account/sessions/revoke-all", dependencies=[PostLimit])
async def revoke_all(request: Request, portal: PortalDep, viewer: ViewerDep) -> Response:
    caller = viewer.caller
    count = await viewer.call(lambda t: portal.auth.revoke_all(caller, t))
    await mark_revoked(portal, user_id=str(viewer.principal.user_id))
    await forget(portal, viewer.session_id)
    request.state.viewer = None
    response = render(request, "signin/signed_out.html", everywhere=count)
    drop_session_cookie(portal, response)
    return response
