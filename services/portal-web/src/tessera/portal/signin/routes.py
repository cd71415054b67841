"""Sign-in pages. Auth does the work; the portal keeps the session id in its cookie."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, Response

from tessera.portal.context import PortalDep
from tessera.portal.upstream.auth import SignedIn
from tessera.portal.upstream.base import UpstreamError
from tessera.portal.web.pages import (
    drop_session_cookie,
    finish,
    limit_posts,
    redirect,
    render,
    require_csrf,
    set_session_cookie,
)
from tessera.portal.web.security import (
    DEFAULT_NEXT,
    SESSION_COOKIE,
    browser_id,
    safe_next,
)
from tessera.portal.web.viewer import MaybeViewerDep, caller_of, forget, remember_email

router = APIRouter(dependencies=[Depends(require_csrf)])

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,60}$")
TOKEN = re.compile(r"^[A-Za-z0-9_\-]{20,128}$")
CODE = re.compile(r"^[0-9]{6}$")

Email = Annotated[str, Form(max_length=254)]
Next = Annotated[str, Form(max_length=200)]


async def sign_in_limit(request: Request, portal: PortalDep) -> None:
    await limit_posts(request, portal.settings.rl_sign_in_per_ip, "sign-in-ip")


SignInLimit = Depends(sign_in_limit)


@router.get("/")
async def home(request: Request, viewer: MaybeViewerDep) -> Response:
    return redirect(request, DEFAULT_NEXT if viewer else "/sign-in")


@router.get("/sign-in")
async def sign_in_form(
    request: Request,
    viewer: MaybeViewerDep,
    next: Annotated[str | None, Query(max_length=200)] = None,
    again: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    if viewer is not None and again != "device":
        return redirect(request, safe_next(next) or DEFAULT_NEXT)
    # `again=device`: signed in, but too long ago to approve a desktop sign-in (a fixed
    # message, never text from the URL).
    return render(
        request,
        "signin/email.html",
        next=safe_next(next) or "",
        error=None,
        again=again == "device" and viewer is not None,
        email=viewer.email if viewer else "",
    )


@router.post("/sign-in", dependencies=[SignInLimit])
async def request_link(
    request: Request, portal: PortalDep, email: Email, next: Next = ""
) -> Response:
    address = email.strip()
    if not EMAIL.match(address):
        return render(
            request,
            "signin/email.html",
            status_code=400,
            next=safe_next(next) or "",
            error="Enter the email address you bought with, like name@example.com.",
            email=address,
        )
    await portal.auth.request_link(
        caller_of(request), address, browser_id(request), safe_next(next)
    )
    return redirect(request, "/sign-in/check-email")


@router.get("/sign-in/check-email")
async def check_email(request: Request) -> Response:
    return render(request, "signin/check_email.html")


@router.get("/sign-in/link")
async def link_landing(
    request: Request, token: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    """Shows a button and consumes nothing: only the POST below calls verify."""
    if not TOKEN.match(token):
        return render(request, "signin/link_failed.html", status_code=400)
    return render(request, "signin/link.html", token=token)


@router.post("/sign-in/link", dependencies=[SignInLimit])
async def link_sign_in(
    request: Request,
    portal: PortalDep,
    token: Annotated[str, Form(max_length=200)],
    code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    if not TOKEN.match(token):
        return render(request, "signin/link_failed.html", status_code=400)
    body = {"token": token, "browser": browser_id(request)}
    code = code.strip()
    if code:
        if not CODE.match(code):
            return render(
                request, "signin/link_code.html", status_code=400, token=token, error=True
            )
        body["code"] = code
    try:
        signed = await portal.auth.verify(caller_of(request), **body)
    except UpstreamError as error:
        if error.status == 409 and error.slug == "code-required":
            return render(request, "signin/link_code.html", token=token, error=False)
        if error.status == 401:
            return render(request, "signin/link_failed.html", status_code=401)
        raise
    return await signed_in(request, portal, signed)


@router.get("/sign-in/code")
async def code_form(request: Request) -> Response:
    return render(request, "signin/code.html", error=None, email="")


@router.post("/sign-in/code", dependencies=[SignInLimit])
async def code_sign_in(
    request: Request,
    portal: PortalDep,
    email: Email,
    code: Annotated[str, Form(max_length=12)],
) -> Response:
    address, code = email.strip(), code.strip().replace(" ", "")
    if not EMAIL.match(address) or not CODE.match(code):
        return render(
            request,
            "signin/code.html",
            status_code=400,
            email=address,
            error="Enter your email address and the 6-digit code from the email.",
        )
    try:
        signed = await portal.auth.verify(
            caller_of(request), email=address, code=code, browser=browser_id(request)
        )
    except UpstreamError as error:
        if error.status == 401:
            return render(
                request,
                "signin/code.html",
                status_code=401,
                email=address,
                error="That code did not work. It may have expired or been used; "
                "ask for a new one.",
            )
        raise
    return await signed_in(request, portal, signed)


async def signed_in(request: Request, portal: PortalDep, signed: SignedIn) -> Response:
    previous = request.cookies.get(SESSION_COOKIE)
    if previous and previous != signed.session_id:
        # Signing in again (to approve a desktop, say) replaces this browser's old session.
        await forget(portal, previous)
        try:
            await portal.auth.sign_out(caller_of(request), previous)
        except UpstreamError as error:
            if error.status not in (400, 422):
                raise
    seconds = int((signed.expires_at - datetime.now(UTC)).total_seconds())
    await remember_email(portal, signed.session_id, signed.user.email, seconds)
    response = redirect(request, safe_next(signed.next) or DEFAULT_NEXT)
    set_session_cookie(portal, response, signed.session_id, seconds)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, portal: PortalDep) -> Response:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await forget(portal, session_id)
        try:
            await portal.auth.sign_out(caller_of(request), session_id)
        except UpstreamError as error:
            if error.status not in (400, 422):  # a malformed cookie is already signed out
                raise
    response = render(request, "signin/signed_out.html")
    drop_session_cookie(portal, response)
    return finish(request, response)
