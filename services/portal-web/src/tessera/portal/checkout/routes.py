"""Where Stripe sends a buyer after paying (the Checkout Session's `success_url`):
payment received, where the welcome mail went, and the license once it is issued; or, for a
subscription, that it (or its trial) has started. Any seller's checkout: billing finds the
session whoever sold it.

Whoever holds the URL (it carries the session id) may see this page, so it shows the buyer's
address masked (billing masks it) and the license key only to its signed-in owner: for
anyone else the page ends at "sign in with the link we mailed". Until the story is complete
the page refreshes itself (htmx polling with JavaScript, a `<meta refresh>` without).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from tessera.portal.context import PortalDep
from tessera.portal.upstream.base import UpstreamError
from tessera.portal.upstream.billing import CheckoutOutcome
from tessera.portal.upstream.licensing import License
from tessera.portal.web.pages import error_page, limit_lookups, render
from tessera.portal.web.viewer import MaybeViewerDep, caller_of

router = APIRouter()

# A Checkout Session id as Stripe (and billing's test checkout) makes them.
SESSION_ID = re.compile(r"^cs_(test|live)_[A-Za-z0-9]{8,200}$")
# States in which nothing more is going to happen by itself: the page stops polling. A held
# order waits for a person (an admin's review; the buyer hears by mail either way), so the
# page does not poll for it; a failed or rejected payment is over.
SETTLED = {"refunded", "partially_refunded", "disputed", "payment_failed", "rejected", "held"}
# An order billing knows but whose payment has not cleared (a bank debit, say): that can
# take days, so the page asks again only every half minute.
PROCESSING = "awaiting_payment"
POLL_SECONDS = 3
POLL_PROCESSING_SECONDS = 30
# A subscription's Stripe status, once billing knows it: started (or its trial), over, or
# waiting for a payment. Only `incomplete` (its first payment not through yet, say a bank
# debit or a card check) can still change by itself, slowly.
SUBSCRIPTION_SETTLED = {
    "trialing",
    "active",
    "past_due",
    "unpaid",
    "canceled",
    "incomplete_expired",
}
SUBSCRIPTION_PROCESSING = "incomplete"


@router.get("/checkout/success", dependencies=[Depends(limit_lookups)])
async def checkout_success(
    request: Request,
    portal: PortalDep,
    viewer: MaybeViewerDep,
    session_id: Annotated[str, Query(max_length=220)] = "",
) -> Response:
    if not SESSION_ID.match(session_id):
        return error_page(
            request,
            404,
            "No such checkout",
            "This link does not name a checkout. If you have just paid, use the link in "
            "your receipt or the welcome email.",
        )
    outcome = await portal.billing.checkout_outcome(caller_of(request), session_id)
    licenses: list[License] = []
    owner = False  # the signed-in person's account holds the order (billing says so)
    if viewer is not None and outcome.order_id is not None:
        caller = viewer.caller
        orders = await viewer.call(lambda t: portal.billing.my_orders(caller, t))
        owner = any(order.id == outcome.order_id for order in orders)
        if owner:
            try:
                mine = await viewer.call(lambda t: portal.licensing.my_licenses(caller, t))
            except UpstreamError:
                mine = []  # licensing away for a moment: the page asks again
            licenses = [lic for lic in mine if lic.order_id == outcome.order_id]
    poll = polling(outcome, owner, bool(licenses))
    return render(
        request,
        "checkout/success.html",
        outcome=outcome,
        licenses=licenses,
        owner=owner,
        poll=poll,
        self_url=f"/checkout/success?session_id={session_id}",
    )


def polling(outcome: CheckoutOutcome, owner: bool, licensed: bool) -> int | None:
    """How often the page asks again, in seconds; None once nothing more will happen by
    itself (or the state is one the page does not know: said once, not polled)."""
    if outcome.kind == "subscription":
        if outcome.state in SUBSCRIPTION_SETTLED:
            return None
        if outcome.state == SUBSCRIPTION_PROCESSING:
            return POLL_PROCESSING_SECONDS
        return POLL_SECONDS if outcome.state == "pending" else None
    poll: int | None = POLL_SECONDS
    if outcome.state in SETTLED or (
        outcome.state == "paid" and outcome.account_ready and (not owner or licensed)
    ):
        poll = None
    elif outcome.state == PROCESSING:
        poll = POLL_PROCESSING_SECONDS
    elif outcome.state not in ("pending", "paid"):
        poll = None  # a state this page does not know: say so once, do not poll
    return poll
