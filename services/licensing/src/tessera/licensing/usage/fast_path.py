"""`POST /v1/usage`'s common case, answered straight off the ASGI server (the kernel's
`FastPath`, as validate's is: desktop/fast_path.py).

A seller calls this on every billable action of its customers, so the framework's layers
(the error and tracing middlewares, routing, dependency solving, response validation) cost
more than the record's own work (docs/performance.md, "Usage"). The common case is answered
here with the same body and headers the route gives:

- a secret key the key book accepts (a live key of a seller whose platform plan is in force),
- a JSON body within the limit that parses as a `RecordRequest` naming its `customer`,
- within the caller's budget, and recorded or replayed (a 200).

Anything else (a customer's token, a publishable or unknown key, no customer, malformed
input, a refusal) goes down the full stack with the body replayed, so every refusal is
rendered by the one code that renders them. Before handing a request on, what this layer
counted is taken back (the caller's budget; the tier's rate of a record refused over the
limit: `service.record(give_back=True)`), so the full stack counts it once. Nothing else is
undone: a refusal writes nothing, and a record the full stack meets again after an error
here is its own retry (the idempotency key makes it a replay)."""

from __future__ import annotations

import time

from pydantic import ValidationError
from starlette.types import ASGIApp, Scope

from tessera.licensing.context import Licensing
from tessera.licensing.seller_api.routes import tenant
from tessera.licensing.usage import service
from tessera.licensing.usage.routes import KEY_PREFIXES, UsageAuth, caller
from tessera.licensing.usage.schemas import RecordOut, RecordRequest
from tessera.shared.api_keys import KeyRefused, SellerCredential
from tessera.shared.http.fast_path import Answer, FastPath
from tessera.shared.http.middleware import header
from tessera.shared.http.problems import Problem
from tessera.shared.sellers import HOME_SELLER_ID

PATH = "/v1/usage"


class RecordFastPath(FastPath):
    path = PATH

    def __init__(self, app: ASGIApp, licensing: Licensing, *, hsts: bool) -> None:
        super().__init__(app, max_body_bytes=licensing.settings.max_body_bytes, hsts=hsts)
        self.licensing = licensing

    async def answer(self, scope: Scope, body: bytes) -> Answer | None:
        seller = self.secret_seller(scope)
        if seller is None:
            return None
        request = parsed(body)
        if request is None:
            return None
        licensing = self.licensing
        budget = (licensing.per_usage_caller, f"key:{seller.key_id}")
        if not licensing.synced_limiter.hit(budget).allowed:
            return None  # refused: nothing counted, the full stack refuses it again
        who = caller(licensing, UsageAuth(tenant(seller), None), request.customer)
        try:
            out, headers = await service.record(
                licensing.pool, who, request, licensing.usage_clock(), give_back=True
            )
        except Exception as error:
            # Handed on, refused or failed: the full stack counts the caller's budget again
            # (and renders the refusal, or meets the error itself).
            licensing.synced_limiter.undo(budget)
            if isinstance(error, Problem):
                return None
            raise  # `safe_answer` logs it and hands the request on
        return rendered(out, headers)

    def secret_seller(self, scope: Scope) -> SellerCredential | None:
        """The seller behind a secret key that may record now; None for anything the full
        stack must judge (and answer 401, 402, 403 or 503 to, or a customer's token)."""
        raw = header(scope, b"authorization")
        if raw is None:
            return None
        scheme, _, token = raw.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(KEY_PREFIXES):
            return None
        book = self.licensing.key_book
        if not book.ready:
            return None
        try:
            seller = book.check(token)
        except KeyRefused:
            return None
        if not seller.is_secret:
            return None
        if seller.mode == "live" and seller.seller_id != HOME_SELLER_ID:
            entry = self.licensing.sellers.by_id(seller.seller_id)
            if entry is None or not entry.plan_in_force(time.time()):
                return None
        return seller


def parsed(body: bytes) -> RecordRequest | None:
    """The record asked for, when well-formed and naming its customer (a secret key must)."""
    try:
        request = RecordRequest.model_validate_json(body)
    except ValidationError:
        return None
    return request if request.customer is not None else None


def rendered(out: RecordOut, headers: dict[str, str]) -> Answer:
    """The route's answer: its JSON body (as FastAPI serialises the model) and the RateLimit
    fields."""
    fields = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return Answer(out.model_dump_json().encode(), headers=fields)
