"""Admin pages for orders held for review (a checkout that did not match the catalog):
the list, and one order's page, which is also its confirmation page: it shows what billing
recorded (fetched by id, nothing taken from the URL) with an approve and a reject form, each
needing a reason. Billing decides, audits, and refuses a second decision (409)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Query, Request, Response

from tessera.portal.admin.routes import unknown_action
from tessera.portal.context import PortalDep
from tessera.portal.upstream.base import UpstreamError
from tessera.portal.web.pages import limit_posts, redirect, render, require_csrf
from tessera.portal.web.viewer import AdminViewerDep, admin_viewer

# The admin check runs first: anyone else gets 404 before any CSRF check can tell them
# that the page exists.
router = APIRouter(
    prefix="/admin/held-orders", dependencies=[Depends(admin_viewer), Depends(require_csrf)]
)

# Every state billing lists held orders in (billing's `GET /v1/admin/held-orders?status=`):
# a held order may also be refunded, or its payment may fail, before anyone reviews it.
STATES = {
    "held": "Waiting for review",
    "paid": "Approved",
    "rejected": "Rejected",
    "refunded": "Refunded",
    "payment_failed": "Payment failed",
}
STATE_PATTERN = "^(" + "|".join(STATES) + ")$"
DECISIONS = {"approve": "approved: it is being provisioned", "reject": "rejected"}


async def post_limit(request: Request, portal: PortalDep) -> None:
    await limit_posts(request, portal.settings.rl_post_per_ip, "post-ip")


@router.get("")
async def held_orders(
    request: Request,
    portal: PortalDep,
    viewer: AdminViewerDep,
    status: Annotated[str, Query(pattern=STATE_PATTERN)] = "held",
) -> Response:
    caller = viewer.caller
    orders = await viewer.call(lambda t: portal.billing.held_orders(caller, t, status))
    return render(request, "admin/held_orders.html", orders=orders, status=status, states=STATES)


@router.get("/{order_id}")
async def held_order(
    request: Request,
    order_id: UUID,
    portal: PortalDep,
    viewer: AdminViewerDep,
    done: Annotated[str, Query(pattern="^(|approve|reject)$")] = "",
) -> Response:
    caller = viewer.caller
    try:
        order = await viewer.call(lambda t: portal.billing.held_order(caller, t, order_id))
    except UpstreamError as error:
        if error.status != 404:
            raise
        return render(
            request,
            "error.html",
            status_code=404,
            title="No such held order",
            message="No order with this id was held for review.",
        )
    return render(
        request,
        "admin/held_order.html",
        order=order,
        notice=f"Order {DECISIONS[done]}." if done else None,
    )


@router.post("/{order_id}/{decision}", dependencies=[Depends(post_limit)])
async def decide(
    request: Request,
    order_id: UUID,
    decision: str,
    portal: PortalDep,
    viewer: AdminViewerDep,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    if decision not in DECISIONS:
        return unknown_action(request)
    reason = reason.strip()
    if not reason:
        return render(
            request,
            "error.html",
            status_code=400,
            title="A reason is required",
            message="Go back and say why: it is kept in the audit log.",
        )
    caller = viewer.caller
    try:
        await viewer.call(
            lambda t: portal.billing.review_held(caller, t, order_id, decision, reason)
        )
    except UpstreamError as error:
        if error.status not in (404, 409, 422):
            raise
        # Already decided (a second click, another admin), or not provisionable as recorded.
        return render(
            request,
            "error.html",
            status_code=409,
            title="The billing service refused",
            message=error.detail or error.slug,
        )
    return redirect(request, f"/admin/held-orders/{order_id}", done=decision)
