"""Checkout over HTTP, and the test checkout's pages when no Stripe key is configured."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from pydantic import EmailStr, TypeAdapter, ValidationError

from tessera.billing.catalog.queries import find as find_item
from tessera.billing.checkout import service, standin
from tessera.billing.checkout.schemas import (
    SESSION_ID,
    CheckoutCreated,
    CheckoutOutcome,
    CheckoutRequest,
)
from tessera.billing.context import PUBLIC_TENANT, Billing, BillingDep
from tessera.billing.pages import page, stylesheet
from tessera.billing.stripe import return_urls
from tessera.shared.api_keys import SellerCredential
from tessera.shared.api_keys.dependencies import credential_of
from tessera.shared.http.context import client_ip
from tessera.shared.http.problems import NotFound, Problem
from tessera.shared.sellers import Tenant

router = APIRouter(tags=["checkout"])

EMAIL = TypeAdapter(EmailStr)


class InvalidEmail(Problem):
    status = 422
    slug = "invalid-email"
    title = "Invalid email address"


async def limit_checkout(billing: Billing, request: Request) -> None:
    await billing.limiter.enforce(
        billing.settings.checkout_rate_limit, "checkout", client_ip(request)
    )


@router.get("/buy/{sku}", status_code=303, summary="Start buying a product (redirects to checkout)")
async def buy(
    sku: str,
    request: Request,
    billing: BillingDep,
    quantity: Annotated[int, Query(ge=1, le=100)] = 1,
) -> RedirectResponse:
    await limit_checkout(billing, request)
    link = await service.start_checkout(
        billing.pool,
        PUBLIC_TENANT,
        billing.settings,
        billing.stripe,
        sku,
        quantity,
        None,
    )
    return RedirectResponse(link.url, status_code=303)


async def checkout_seller(request: Request) -> SellerCredential | None:
    """The seller behind the request's key (publishable or secret), or None when the request
    carries no `Authorization` header: the home seller's public checkout, as before keys. A
    header that is not a valid key is the kernel's 401, never the home seller's checkout."""
    if "authorization" not in request.headers:
        return None
    return credential_of(request)


def checkout_tenant(seller: SellerCredential | None) -> Tenant:
    """Whose SKU: the key's tenant, or the home seller's without a key. Which Stripe account
    sells it is `service.start_checkout`'s to decide (the platform's, a connected one, or
    a 409)."""
    if seller is None:
        return PUBLIC_TENANT
    return Tenant(seller.seller_id, seller.mode)


@router.post(
    "/v1/checkout/sessions",
    status_code=201,
    summary="Create a checkout session",
    # The key is optional: without one, the home seller's checkout (as before keys).
    openapi_extra={"security": [{"apiKey": []}, {}]},
    responses={
        403: {"description": "success_url or cancel_url without a secret key"},
        409: {"description": "The key's seller cannot take payments yet"},
        422: {"description": "A bad body, or a return URL that is not one (invalid-return-url)"},
    },
)
async def create_session(
    body: CheckoutRequest,
    request: Request,
    billing: BillingDep,
    seller: Annotated[SellerCredential | None, Depends(checkout_seller)],
) -> CheckoutCreated:
    # A publishable key is public (it sits in browsers): its budget is counted beside the
    # caller's address, so one client cannot spend a seller's whole budget.
    await limit_checkout(billing, request)
    if seller is not None:
        billing.synced_limiter.enforce((billing.per_seller_key, str(seller.key_id)))
    tenant = checkout_tenant(seller)
    return_to = return_urls.chosen(
        billing.settings, body.success_url, body.cancel_url,
        secret_key=seller is not None and seller.is_secret, mode=tenant.mode,
    )  # fmt: skip
    link = await service.start_checkout(
        billing.pool,
        tenant,
        billing.settings,
        billing.stripe,
        body.sku,
        body.quantity,
        str(body.email) if body.email else None,
        return_to,
    )
    return CheckoutCreated(id=link.id, url=link.url, test_mode=billing.stripe is None)


# --- the test checkout ---------------------------------------------------------------------


def require_test_mode(billing: Billing) -> None:
    # With a real Stripe account the stand-in does not exist (404, not a hint).
    if billing.stripe is not None:
        raise NotFound()


@router.get(
    "/v1/checkout/sessions/{session_id}",
    response_model=CheckoutOutcome,
    summary="What became of a checkout (its success page polls this)",
)
async def checkout_outcome(
    request: Request,
    billing: BillingDep,
    session_id: Annotated[str, PathParam(pattern=SESSION_ID, max_length=220)],
) -> CheckoutOutcome:
    await billing.limiter.enforce(
        billing.settings.checkout_status_rate_limit, "checkout-status", client_ip(request)
    )
    return await service.outcome(billing.pool, session_id)


# The built-in stand-in for Stripe's hosted checkout (no Stripe key configured: dev and
# tests). Its forms are documented so that a test or a script can drive it; with a Stripe key
# every /test-checkout route answers 404.
TEST_CHECKOUT_FORM: dict[int | str, dict[str, Any]] = {
    303: {
        "description": "Done: on to the session's completion page. Billing received the "
        "events Stripe would send (signed webhooks).",
        "headers": {"location": {"schema": {"type": "string"}}},
    },
    404: {"description": "No such session, or a Stripe key is configured (no test checkout)."},
}


@router.get("/test-checkout/assets/checkout.css", include_in_schema=False)
async def test_checkout_stylesheet(billing: BillingDep) -> PlainTextResponse:
    require_test_mode(billing)
    return stylesheet()


@router.get("/test-checkout/{session_id}", include_in_schema=False)
async def checkout_page(session_id: str, request: Request, billing: BillingDep) -> HTMLResponse:
    require_test_mode(billing)
    async with billing.pool.acquire() as conn:
        session = await standin.get_session(conn, PUBLIC_TENANT, session_id)
        item = await find_item(conn, PUBLIC_TENANT, session.sku)
    assert item is not None
    target = session.success_target()
    return page(
        "test_checkout.html",
        form_target=return_urls.origin(target) if target is not None else None,
        session=session,
        item=item,
        error=None,
        cancel_url=session.cancel_url or str(billing.settings.site_url),
    )


@router.post(
    "/test-checkout/{session_id}/pay",
    tags=["test checkout"],
    summary="Pay (the test checkout's form)",
    status_code=303,
    responses=TEST_CHECKOUT_FORM,
)
async def pay(
    session_id: str,
    request: Request,
    billing: BillingDep,
    email: Annotated[str, Form(max_length=320)],
) -> RedirectResponse:
    require_test_mode(billing)
    await limit_checkout(billing, request)
    try:
        address = str(EMAIL.validate_python(email.strip()))
    except ValidationError:
        raise InvalidEmail("Enter a valid email address.") from None
    settings = billing.settings
    async with billing.pool.acquire() as conn:
        session = await standin.get_session(conn, PUBLIC_TENANT, session_id)
        if session.status == "open":
            await standin.complete_session(conn, PUBLIC_TENANT, session_id, address)
    receipt = f"{str(settings.public_url).rstrip('/')}/test-checkout/{session_id}/receipt"
    if session.status == "open":
        await standin.deliver(settings, standin.payment_events(session, address, receipt))
    # As Stripe does: on to the seller's success page, else the test checkout's own.
    target = session.success_target() or f"/test-checkout/{session_id}/complete"
    return RedirectResponse(target, status_code=303)


@router.get("/test-checkout/{session_id}/complete", include_in_schema=False)
async def complete(session_id: str, request: Request, billing: BillingDep) -> HTMLResponse:
    require_test_mode(billing)
    async with billing.pool.acquire() as conn:
        session = await standin.get_session(conn, PUBLIC_TENANT, session_id)
    return page(
        "test_checkout_complete.html",
        session=session,
        portal_url=str(billing.settings.portal_url),
    )


@router.get("/test-checkout/{session_id}/receipt", include_in_schema=False)
async def receipt(session_id: str, request: Request, billing: BillingDep) -> HTMLResponse:
    require_test_mode(billing)
    async with billing.pool.acquire() as conn:
        session = await standin.get_session(conn, PUBLIC_TENANT, session_id)
        item = await find_item(conn, PUBLIC_TENANT, session.sku)
    return page("test_receipt.html", session=session, item=item)


@router.post(
    "/test-checkout/{session_id}/refund",
    tags=["test checkout"],
    summary="Refund (dev control)",
    status_code=303,
    responses=TEST_CHECKOUT_FORM,
)
async def refund(
    session_id: str,
    request: Request,
    billing: BillingDep,
    amount: Annotated[int | None, Form(ge=1)] = None,
) -> RedirectResponse:
    """Dev control: Stripe refunds `amount` (all of it by default) and tells billing."""
    require_test_mode(billing)
    async with billing.pool.acquire() as conn:
        session = await standin.get_session(conn, PUBLIC_TENANT, session_id)
    event = standin.refund_event(session, amount or session.amount_total)
    await standin.deliver(billing.settings, [event])
    return RedirectResponse(f"/test-checkout/{session_id}/complete", status_code=303)


@router.post(
    "/test-checkout/{session_id}/dispute",
    tags=["test checkout"],
    summary="Dispute (dev control)",
    status_code=303,
    responses=TEST_CHECKOUT_FORM,
)
async def dispute(
    session_id: str,
    request: Request,
    billing: BillingDep,
    status: Annotated[str, Form(pattern="^(needs_response|won|lost)$")],
) -> RedirectResponse:
    """Dev control: the buyer's bank opens a dispute (`needs_response`), or it closes."""
    require_test_mode(billing)
    async with billing.pool.acquire() as conn:
        session = await standin.get_session(conn, PUBLIC_TENANT, session_id)
    await standin.deliver(billing.settings, [standin.dispute_event(session, status)])
    return RedirectResponse(f"/test-checkout/{session_id}/complete", status_code=303)
