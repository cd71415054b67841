"""Connect's routes: the seller's (secret key) start, confirm, read and end a connection;
Stripe's OAuth callback (a browser redirect: public, the `state` says whose it is; a page
for the person who lands there, JSON for a client that asks for it)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse

from tessera.billing import pages
from tessera.billing.catalog.routes import OwnerTenant, SecretTenant
from tessera.billing.connect import service
from tessera.billing.connect.schemas import (
    ConnectStart,
    ConnectStarted,
    PendingConnection,
    StripeConnection,
)
from tessera.billing.context import BillingDep
from tessera.shared.http.context import client_ip
from tessera.shared.http.problems import Problem

seller_router = APIRouter(prefix="/v1/stripe", tags=["seller"])
router = APIRouter(prefix="/v1/stripe", tags=["stripe"])
# The callback's pages' stylesheet (the test checkout's serves only without a Stripe key).
STYLESHEET = "/connect/assets/checkout.css"
STYLESHEET_PATH = router.prefix + STYLESHEET


@seller_router.post(
    "/connect",
    status_code=201,
    summary="Start connecting the seller's Stripe account (the URL to send its developer to)",
    responses={409: {"description": "Connected already, or Connect unavailable in this mode"}},
)
async def start_connect(
    billing: BillingDep, tenant: OwnerTenant, body: ConnectStart | None = None
) -> ConnectStarted:
    return await service.start(billing.pool, billing.accounts, billing.settings, tenant)


CALLBACK_PAGE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The authorization waits for the seller's confirmation: a page for a "
        "browser (`Accept` lists `text/html`), this JSON for anything else.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    },
    400: {
        "description": "Unknown, used or expired state; denied; bad code (a page for a "
        "browser, problem+json for anything else)"
    },
}


# What the person on the callback page can do about each refusal.
NEXT = {
    "connect-state-invalid": "This link was used already, or is older than 15 minutes. "
    "Ask for a new one: POST /v1/stripe/connect with the seller's secret key.",
    "connect-denied": "Nothing was connected. To connect after all, start again with a new "
    "link (POST /v1/stripe/connect).",
    "connect-code-invalid": "Stripe did not accept the authorization. Start again with a new "
    "link (POST /v1/stripe/connect).",
    "stripe-unavailable": "Stripe did not answer. Start again with a new link in a moment.",
    "rate-limited": "Too many attempts from this address: wait a minute, then start again.",
}


def wants_page(request: Request) -> bool:
    """A page for a browser (every browser's navigation lists `text/html`, and a person
    following Stripe's redirect is the callback's usual visitor); JSON (problem+json for a
    refusal, as every route) for anything else: `application/json`, `*/*`, a script."""
    return "text/html" in request.headers.get("accept", "").lower()


@router.get(
    "/connect/callback",
    summary="Stripe's OAuth redirect: takes the authorization its `state` started, for the "
    "seller to confirm",
    response_model=PendingConnection,
    responses=CALLBACK_PAGE,
)
async def connect_callback(
    request: Request,
    billing: BillingDep,
    state: Annotated[str, Query(min_length=16, max_length=128)],
    code: Annotated[str | None, Query(max_length=256)] = None,
    error: Annotated[str | None, Query(max_length=100)] = None,
    error_description: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    try:
        await billing.limiter.enforce(
            billing.settings.api_rate_limit, "stripe-connect-callback", client_ip(request)
        )
        pending = await service.finish(
            billing.pool, billing.accounts, billing.settings, state, code, error
        )
    except Problem as problem:
        if not wants_page(request):
            raise
        return pages.page(
            "connect_error.html", problem.status, problem=problem, next=NEXT.get(problem.slug),
            stylesheet=STYLESHEET_PATH,
        )  # fmt: skip
    if not wants_page(request):
        return Response(pending.model_dump_json(), media_type="application/json")
    return pages.page(
        "connect_pending.html", pending=pending, mode="live" if pending.livemode else "test",
        stylesheet=STYLESHEET_PATH,
    )  # fmt: skip


@router.get(STYLESHEET, include_in_schema=False)
async def connect_stylesheet() -> PlainTextResponse:
    return pages.stylesheet()


@seller_router.get(
    "/connect/pending",
    summary="Authorizations waiting for the seller's confirmation (from the Connect callback)",
)
async def list_pending(billing: BillingDep, tenant: SecretTenant) -> list[PendingConnection]:
    return await service.pending(billing.pool, billing.settings, tenant)


@seller_router.post(
    "/connect/pending/{pending_id}/confirm",
    summary="Confirm a pending authorization: the account becomes the seller's connection",
    responses={
        404: {"description": "No such pending authorization of this seller (or expired)"},
        409: {
            "description": "Connected already to another account, or the account is "
            "another seller's"
        },
    },
)
async def confirm_pending(
    pending_id: UUID, billing: BillingDep, tenant: OwnerTenant
) -> StripeConnection:
    return await service.confirm(billing.pool, tenant, pending_id)


@seller_router.get("/connection", summary="The seller's connected Stripe account, if any")
async def get_connection(billing: BillingDep, tenant: SecretTenant) -> StripeConnection:
    return await service.connection(billing.pool, tenant)


@seller_router.delete(
    "/connection",
    status_code=204,
    summary="Disconnect the seller's Stripe account (deauthorizes the platform on it)",
    responses={404: {"description": "No Stripe account is connected"}},
)
async def delete_connection(billing: BillingDep, tenant: OwnerTenant) -> Response:
    await service.disconnect(billing.pool, billing.accounts, billing.settings, tenant)
    return Response(status_code=204)
