"""FastAPI dependencies that turn `Authorization: Bearer <key>` into a `SellerCredential`.

The app's service context holds its `KeyBook` (`app.state.context.key_book`, followed by
the kernel's lifespan). Every refusal is the same 401 with one
generic detail (malformed, unknown, revoked and expired alike: the answer must not tell a
prober which keys exist), and nothing here logs, echoes or raises with the key's text.
A valid live key of a non-home seller whose platform plan is not in force is a 402
`platform-plan-inactive` (the seller directory, `app.state.context.sellers`, says so; the
key is real, so naming the reason tells a prober nothing it could use).
"""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import Depends, Request

from tessera.shared.api_keys.book import KeyBook, SellerCredential
from tessera.shared.api_keys.format import KeyRefused
from tessera.shared.api_keys.sessions import looks_like_session, session_credential
from tessera.shared.directory.sellers import SellerBook
from tessera.shared.http.problems import Problem, ServiceUnavailable
from tessera.shared.sellers import HOME_SELLER_ID
from tessera.shared.tokens import Forbidden, Unauthorized, bearer_token

log = logging.getLogger("tessera.api_keys")

INVALID_KEY = "A valid API key is required."


class PlatformPlanInactive(Problem):
    status = 402
    slug = "platform-plan-inactive"
    title = "The seller's platform plan is not active"

    def __init__(self) -> None:
        super().__init__(
            "Live keys work while the seller's platform plan is active; test keys always do."
        )


def credential_of(request: Request, *, plan: bool = True) -> SellerCredential:
    """The seller behind the request's key (publishable or secret), or the one 401; a live
    key of a seller without a platform plan in force, 402 (unless `plan` is False: the
    routes that buy the plan)."""
    context = getattr(request.app.state, "context", None)
    book: KeyBook | None = getattr(context, "key_book", None)
    if book is None:
        raise Unauthorized("API key verification is not configured.")
    if not book.ready:
        # Before the replay is in, a real key would look unknown: say "later", not "no".
        raise ServiceUnavailable("API keys are loading.", headers={"Retry-After": "1"})
    try:
        credential = book.check(bearer_token(request))
    except (KeyRefused, Unauthorized) as refused:
        log.debug("api_keys.refused", extra={"reason": getattr(refused, "reason", "missing")})
        raise Unauthorized(INVALID_KEY) from None
    if plan and credential.mode == "live" and credential.seller_id != HOME_SELLER_ID:
        require_plan(getattr(context, "sellers", None), credential)
    return credential


def require_plan(sellers: SellerBook | None, credential: SellerCredential) -> None:
    """A live key works only while its seller's platform plan is in force (docs/sellers.md,
    "Platform plan"): one dictionary lookup in the directory every process holds."""
    entry = sellers.by_id(credential.seller_id) if sellers is not None else None
    if entry is not None and entry.plan_in_force(time.time()):
        return
    if sellers is not None and not sellers.ready:
        raise ServiceUnavailable("The seller directory is loading.", headers={"Retry-After": "1"})
    raise PlatformPlanInactive()


async def seller_credential(request: Request, *, plan: bool = True) -> SellerCredential:
    """The seller behind a key, or behind a member's seller-session token (the dashboard's
    way in, docs/sellers.md "Dashboard sessions"), with the same plan rule for live mode.
    A key is tried first, so a keyed request pays nothing for sessions; only a bearer the
    key check refused is looked at as a session."""
    try:
        return credential_of(request, plan=plan)
    except Unauthorized:
        if not looks_like_session(request):
            raise
    context = getattr(request.app.state, "context", None)
    if getattr(context, "token_verifier", None) is None:
        raise Unauthorized(INVALID_KEY)  # a process that verifies no tokens takes no session
    try:
        credential = await session_credential(request, bearer_token(request))
    except Unauthorized:
        # The one answer a refused key gets: a prober learns nothing from the difference.
        raise Unauthorized(INVALID_KEY) from None
    if plan and credential.mode == "live" and credential.seller_id != HOME_SELLER_ID:
        require_plan(getattr(context, "sellers", None), credential)
    return credential


# Two dependencies side by side rather than one on top of the other: each level of
# FastAPI's dependency resolution costs a request several µs, more than the check itself.
async def current_seller(request: Request) -> SellerCredential:
    """The seller behind a publishable or a secret key (or a member's session)."""
    return await seller_credential(request)


async def current_secret_seller(request: Request) -> SellerCredential:
    """The seller behind a secret key (or a member's session); a publishable key (meant
    for browsers) gets 403."""
    credential = await seller_credential(request)
    if not credential.is_secret:
        raise Forbidden("This route needs a secret key.")
    return credential


async def current_secret_seller_without_plan(request: Request) -> SellerCredential:
    """A secret key (or a member's session), live or test, whether or not its seller's
    platform plan is in force: for the routes where a seller buys or reads its plan
    (docs/sellers.md)."""
    credential = await seller_credential(request, plan=False)
    if not credential.is_secret:
        raise Forbidden("This route needs a secret key.")
    return credential


SellerDep = Annotated[SellerCredential, Depends(current_seller)]
SecretSellerDep = Annotated[SellerCredential, Depends(current_secret_seller)]
PlanFreeSecretSellerDep = Annotated[SellerCredential, Depends(current_secret_seller_without_plan)]
