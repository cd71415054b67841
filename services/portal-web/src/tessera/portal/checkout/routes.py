"""Where Stripe sends a buyer after paying (the Checkout Session's `success_url`):
payment received, where the welcome mail went, and the license once it is issued.

Whoever holds the URL (it carries the session id) may see this page, so it shows the buyer's
address masked (billing masks it) and the license key only to its signed-in owner: for
anyone else the page ends at "sign in with the link we mailed". Until the story is complete
the page refreshes itself (htmx polling with JavaScript, a `<meta refresh>` without).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from tessera.portal.upstream.base import UpstreamError
from tessera.portal.upstream.licensing import License
from tessera.portal.web.context import PortalDep
from tessera.portal.web.pages import error_page, render
from tessera.portal.web.viewer import MaybeViewerDep, caller_of

router = APIRouter()

# A Checkout Session id as Stripe (and billing's test checkout) makes them.
SESSION_ID = re.compile(r"^cs_(test|live)_[A-Za-z0-9]{8,200}$")
# States in which nothing more is going to happen to the payment.
SETTLED = {"refunded", "partially_refunded", "disputed"}
POLL_SECONDS = 3


@router.get("/checkout/success")
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
    done = outcome.state in SETTLED or (
        outcome.state != "pending" and outcome.account_ready and (not owner or bool(licenses))
    )
    return render(
        request,
        "checkout/success.html",
        outcome=outcome,
        licenses=licenses,
        owner=owner,
        poll=None if done else POLL_SECONDS,
        self_url=f"/checkout/success?session_id={session_id}",
    )
