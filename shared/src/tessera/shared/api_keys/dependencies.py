"""FastAPI dependencies that turn `Authorization: Bearer <key>` into a `SellerCredential`.

The app's service context holds its `KeyBook` (`app.state.context.key_book`, followed by
the kernel's lifespan). Every refusal is the same 401 with one
generic detail (malformed, unknown, revoked and expired alike: the answer must not tell a
prober which keys exist), and nothing here logs, echoes or raises with the key's text.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Request

from tessera.shared.api_keys.book import KeyBook, SellerCredential
from tessera.shared.api_keys.format import KeyRefused
from tessera.shared.http.problems import ServiceUnavailable
from tessera.shared.tokens import Forbidden, Unauthorized, bearer_token

log = logging.getLogger("tessera.api_keys")

INVALID_KEY = "A valid API key is required."


def credential_of(request: Request) -> SellerCredential:
    """The seller behind the request's key (publishable or secret), or the one 401."""
    book: KeyBook | None = getattr(getattr(request.app.state, "context", None), "key_book", None)
    if book is None:
        raise Unauthorized("API key verification is not configured.")
    if not book.ready:
        # Before the replay is in, a real key would look unknown: say "later", not "no".
        raise ServiceUnavailable("API keys are loading.", headers={"Retry-After": "1"})
    try:
        return book.check(bearer_token(request))
    except (KeyRefused, Unauthorized) as refused:
        log.debug("api_keys.refused", extra={"reason": getattr(refused, "reason", "missing")})
        raise Unauthorized(INVALID_KEY) from None


# Two dependencies side by side rather than one on top of the other: each level of
# FastAPI's dependency resolution costs a request several µs, more than the check itself.
async def current_seller(request: Request) -> SellerCredential:
    """The seller behind a publishable or a secret key."""
    return credential_of(request)


async def current_secret_seller(request: Request) -> SellerCredential:
    """The seller behind a secret key; a publishable key (meant for browsers) gets 403."""
    credential = credential_of(request)
    if not credential.is_secret:
        raise Forbidden("This route needs a secret key.")
    return credential


SellerDep = Annotated[SellerCredential, Depends(current_seller)]
SecretSellerDep = Annotated[SellerCredential, Depends(current_secret_seller)]
