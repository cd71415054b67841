"""Rendering: templates, the headers every page carries, the cookies, CSRF checking, and
the HTML error pages (the kernel's problem+json stays for /healthz and /readyz)."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from opentelemetry import trace
from starlette.exceptions import HTTPException as StarletteHTTPException

from tessera.portal.context import Portal, portal_of
from tessera.portal.upstream.base import UpstreamError
from tessera.portal.web.errors import CsrfFailed, PageNotFound, SignedOut
from tessera.portal.web.security import (
    BROWSER_COOKIE,
    BROWSER_MAX_AGE,
    SESSION_COOKIE,
    browser_id,
    content_security_policy,
    csrf_matches,
    csrf_token,
    safe_next,
    same_origin,
)
from tessera.portal.web.viewer import find_viewer
from tessera.shared.http.context import client_ip, current_request_id
from tessera.shared.http.problems import Problem, RateLimited

log = logging.getLogger("tessera.portal.pages")
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

templates = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def money(minor: int, currency: str) -> str:
    return f"{minor / 100:,.2f} {currency.upper()}"


# A status in the customer's words, never the slug the services store.
LICENSE_STATUS = {"active": "Active", "suspended": "Suspended", "revoked": "Revoked"}
ORDER_STATUS = {
    "awaiting_payment": "Payment processing",
    "paid": "Paid",
    "payment_failed": "Payment failed",
    "refunded": "Refunded",
    "held": "Under review",
    "rejected": "Not accepted",
}


def words(slug: str, table: dict[str, str]) -> str:
    """`table`'s words for `slug`; one the table does not know reads as words too."""
    return table.get(slug) or slug.replace("_", " ").replace("-", " ").capitalize()


def license_status(slug: str) -> str:
    return words(slug, LICENSE_STATUS)


def order_status(slug: str) -> str:
    return words(slug, ORDER_STATUS)


templates.filters["when"] = when
templates.filters["money"] = money
templates.filters["license_status"] = license_status
templates.filters["order_status"] = order_status


def page_headers(portal: Portal) -> dict[str, str]:
    return {
        "content-security-policy": content_security_policy(portal.settings.stripe_portal_origin),
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
    }


def finish(request: Request, response: Response) -> Response:
    """Set the browser cookie when it is new, drop a dead session's cookie."""
    portal = portal_of(request)
    browser = browser_id(request)
    if getattr(request.state, "new_browser", False):
        response.set_cookie(
            BROWSER_COOKIE,
            browser,
            max_age=BROWSER_MAX_AGE,
            httponly=True,
            secure=portal.secure,
            samesite="lax",
        )
    if getattr(request.state, "drop_session", False):
        drop_session_cookie(portal, response)
    return response


def set_session_cookie(portal: Portal, response: Response, session_id: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=max(60, max_age),
        httponly=True,
        secure=portal.secure,
        samesite="lax",
    )


def drop_session_cookie(portal: Portal, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, httponly=True, secure=portal.secure, samesite="lax")


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    portal = portal_of(request)
    viewer = getattr(request.state, "viewer", None)
    body = templates.get_template(name).render(
        request=request,
        path=request.url.path,
        viewer=viewer,
        csrf=csrf_token(portal.settings.secret_key, browser_id(request)),
        product=portal.settings.product_name,
        request_id=current_request_id(),
        **context,
    )
    response = HTMLResponse(body, status_code=status_code, headers=page_headers(portal))
    return finish(request, response)


def redirect(request: Request, path: str, **query: str) -> Response:
    """303 to one of the portal's own paths (never a target taken from input unchecked)."""
    assert path.startswith("/")
    assert not path.startswith("//")
    target = path + ("?" + urlencode(query) if query else "")
    response = RedirectResponse(target, status_code=303, headers=page_headers(portal_of(request)))
    return finish(request, response)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


async def require_csrf(request: Request) -> None:
    """Every unsafe method must bring this browser's CSRF token from the same origin."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    portal = portal_of(request)
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value = form.get("csrf")
        sent = value if isinstance(value, str) else None
    browser = request.cookies.get(BROWSER_COOKIE)
    if not same_origin(request) or not csrf_matches(portal.settings.secret_key, browser, sent):
        raise CsrfFailed()


async def limit_posts(request: Request, rule: str, scope: str) -> None:
    portal = portal_of(request)
    ip = client_ip(request)
    await portal.limiter.enforce(rule, scope, ip)


async def limit_lookups(request: Request) -> None:
    """Per client IP, on a page each request of which calls other services (a route
    dependency: it runs before the viewer is looked up)."""
    portal = portal_of(request)
    await limit_posts(request, portal.settings.rl_lookup_per_ip, "lookup-ip")


# --- error pages --------------------------------------------------------------------------


def error_page(request: Request, status: int, title: str, message: str, **extra: Any) -> Response:
    return render(request, "error.html", status_code=status, title=title, message=message, **extra)


async def on_signed_out(request: Request, _: Exception) -> Response:
    request.state.drop_session = bool(request.cookies.get(SESSION_COOKIE))
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    next_path = safe_next(target) if request.method == "GET" else None
    if is_htmx(request):
        # htmx follows a redirect inside the swap; HX-Redirect moves the whole page.
        response = Response(status_code=204, headers={"hx-redirect": "/sign-in"})
        return finish(request, response)
    return redirect(request, "/sign-in", **({"next": next_path} if next_path else {}))


async def on_not_found(request: Request, _: Exception) -> Response:
    if getattr(request.state, "viewer", None) is None and request.cookies.get(SESSION_COOKIE):
        # A signed-in person's 404 keeps the navigation (and no "Sign in with a code").
        with contextlib.suppress(UpstreamError):  # the plain page, then
            await find_viewer(request, portal_of(request))
    return error_page(request, 404, "Page not found", "There is nothing at this address.")


async def on_csrf(request: Request, _: Exception) -> Response:
    log.info("portal.csrf.refused", extra={"path": request.url.path})
    return error_page(
        request,
        403,
        "This form has expired",
        "Your browser sent a form we could not verify. Go back, reload the page and try "
        "again. (Cookies must be enabled to sign in.)",
    )


async def on_upstream(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UpstreamError)
    span = trace.get_current_span().get_span_context()
    trace_id = format(span.trace_id, "032x") if span.is_valid else None
    if exc.status == 429:
        return error_page(
            request,
            429,
            "Too many attempts",
            "Please wait a little and try again.",
            retry_after=exc.headers.get("retry-after"),
        )
    if exc.status == 404:
        return await on_not_found(request, exc)
    if exc.status in (400, 422):
        # The upstream refused what the person sent (a date range, a search term): theirs
        # to fix, not a failure on our side.
        log.info("portal.page.upstream_refused", extra={"upstream": exc.service})
        return error_page(
            request,
            400,
            "Check what you entered",
            exc.detail or f"The {exc.service} service refused the request.",
        )
    log.warning(
        "portal.page.upstream_failed",
        extra={
            "upstream": exc.service,
            "status": exc.status,
            "problem": exc.problem_type,
            "trace_id": trace_id,
            "path": request.url.path,
        },
    )
    return error_page(
        request,
        502,
        "Something went wrong on our side",
        f"We could not reach the {exc.service} service just now. Nothing was changed. "
        "Please try again in a minute; if it keeps happening, contact support with the "
        "reference below.",
        trace_id=trace_id,
    )


async def hidden_admin_path(request: Request) -> bool:
    """A path under /admin asked for by anyone but an admin: it must look like no page."""
    path = request.url.path
    if path != "/admin" and not path.startswith("/admin/"):
        return False
    viewer = await find_viewer(request, portal_of(request))
    return viewer is None or not viewer.is_admin


async def on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    # Under /admin, a non-admin gets the 404 before any other refusal: a 405, or the 400 of a
    # body that does not parse (FastAPI parses the body before the role check runs).
    if exc.status_code == 404 or await hidden_admin_path(request):
        return await on_not_found(request, exc)
    if exc.status_code == 405:
        return error_page(request, 405, "Not allowed", "This page cannot be used that way.")
    return error_page(request, exc.status_code, "Request refused", "The request was refused.")


async def on_validation(request: Request, exc: Exception) -> Response:
    if await hidden_admin_path(request):
        return await on_not_found(request, exc)
    return error_page(
        request,
        400,
        "Something is missing",
        "The form was incomplete or not in the expected shape. Go back and check it.",
    )


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    if isinstance(exc, RateLimited):
        return error_page(
            request,
            429,
            "Too many attempts",
            "Please wait a little and try again.",
            retry_after=str(exc.retry_after),
        )
    return error_page(request, exc.status, exc.title, exc.detail or "")


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("portal.page.failed", exc_info=exc)
    return error_page(
        request,
        500,
        "Something went wrong on our side",
        "The page failed. Please try again; if it keeps happening, contact support with "
        "the reference below.",
    )


def install_page_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SignedOut, on_signed_out)
    app.add_exception_handler(PageNotFound, on_not_found)
    app.add_exception_handler(CsrfFailed, on_csrf)
    app.add_exception_handler(UpstreamError, on_upstream)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(Exception, on_unexpected)
