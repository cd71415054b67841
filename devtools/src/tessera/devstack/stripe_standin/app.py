"""The stand-in's HTTP app: Stripe's request handling (keys, `Stripe-Account`,
`Idempotency-Key`, form bodies, `expand[]`, error shapes) around each resource's handlers."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tessera.devstack.stripe_standin.api import Call, Endpoint
from tessera.devstack.stripe_standin.settings import StandInSettings
from tessera.devstack.stripe_standin.store import API_VERSION, PLATFORM, Replay, Store, snapshot
from tessera.devstack.stripe_standin.webhooks import Deliverer
from tessera.devstack.stripe_standin.wire import (
    Obj,
    Params,
    StripeApiError,
    check_known,
    expand,
    new_id,
    parse_form,
)

LIST_PARAMS = ("limit", "starting_after", "ending_before")
log = logging.getLogger(__name__)


@dataclass
class RateLimiter:
    per_second: int
    seen: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        window = self.seen[key]
        while window and window[0] < now - 1:
            window.popleft()
        if len(window) >= self.per_second:
            return False
        window.append(now)
        return True


def _api_key(request: Request, settings: StandInSettings, store: Store) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise StripeApiError(
            401,
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY').",
        )
    shown = f"{key[:8]}{'*' * 4}{key[-4:]}"
    if key in store.access_tokens:
        if store.access_tokens[key] in store.revoked:
            raise StripeApiError(401, f"Expired API Key provided: {shown}", code="api_key_expired")
        return key
    test_key = key.startswith(("sk_test_", "rk_test_"))
    if (settings.api_key is not None and key != settings.api_key) or not test_key:
        raise StripeApiError(401, f"Invalid API Key provided: {shown}", code="api_key_invalid")
    return key


def _account(request: Request, store: Store, key: str) -> str:
    """The account a request acts in: an OAuth access token's own account, the
    `Stripe-Account` header's connected account, or the platform."""
    account = store.access_tokens.get(key) or request.headers.get("stripe-account")
    if account is None:
        return PLATFORM
    found = store.find(PLATFORM, account)
    if found is None or found["object"] != "account" or account in store.revoked:
        raise StripeApiError(
            403,
            f"The provided key does not have access to account '{account}' (or that account "
            "does not exist). Application access may have been revoked.",
            code="account_invalid",
        )
    return account


def _form_value(value: Any) -> Any:
    """A JSON value as the form parser would have made it (control endpoints take both)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return {str(k): _form_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_form_value(v) for v in value]
    return "" if value is None else str(value)


async def _params(request: Request, settings: StandInSettings, *, api: bool) -> Params:
    if request.method in ("GET", "DELETE"):
        return Params(parse_form(parse_qsl(request.url.query, keep_blank_values=True)))
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > settings.max_body_bytes:
            raise StripeApiError(413, "Request body too large.")
    content_type = request.headers.get("content-type", "application/x-www-form-urlencoded")
    if not api and body and content_type.startswith("application/json"):
        try:
            data = json.loads(body)
        except ValueError as error:
            raise StripeApiError(400, "Invalid JSON body.") from error
        if not isinstance(data, dict):
            raise StripeApiError(400, "The JSON body must be an object.")
        return Params(_form_value(data))
    if body and not content_type.startswith("application/x-www-form-urlencoded"):
        raise StripeApiError(
            400,
            "Invalid request: the body must be application/x-www-form-urlencoded.",
        )
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as error:
        raise StripeApiError(400, "Invalid request: malformed form body.") from error
    if not api:
        # The stand-in's own pages post forms to URLs that carry parameters too.
        pairs = parse_qsl(request.url.query, keep_blank_values=True) + pairs
    return Params(parse_form(pairs))


def _json(
    body: Obj,
    status: int = 200,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
) -> JSONResponse:
    return JSONResponse(
        body,
        status_code=status,
        headers={
            "Request-Id": request_id or new_id("req_", 14),
            "Stripe-Version": API_VERSION,
            **(headers or {}),
        },
    )


class StandIn:
    """The app's state and request handling; `create_app` wires it to Starlette."""

    def __init__(self, settings: StandInSettings) -> None:
        self.settings = settings
        self.store = Store()
        self.deliverer = Deliverer(settings)
        self.store.deliverer = self.deliverer
        self.limiter = RateLimiter(settings.rate_limit)
        # Awaited before each API request is handled (`gate`) and after, before its answer
        # is sent (`answered`): tests hold or slow Stripe with them, to have a call in flight
        # while something else happens, before or after Stripe acted on it.
        self.gate: Callable[[Request], Awaitable[None]] | None = None
        self.answered: Callable[[Request], Awaitable[None]] | None = None

    async def handle(self, endpoint: Endpoint, request: Request) -> Response:
        try:
            response = await self._handle(endpoint, request)
            if endpoint.api and self.answered is not None:
                await self.answered(request)
            return response
        except StripeApiError as error:
            return _json(error.body(), error.status)
        except Exception:
            # A bug of the stand-in: answered as Stripe answers its own (the state was
            # restored), and logged so it gets fixed.
            log.exception("the stand-in failed on %s %s", request.method, request.url.path)
            unknown = StripeApiError(500, "An unknown error occurred", type="api_error")
            return _json(unknown.body(), 500)

    async def _handle(self, endpoint: Endpoint, request: Request) -> Response:
        key = _api_key(request, self.settings, self.store) if endpoint.api else "control"
        if endpoint.api and not self.limiter.allow(key):
            raise StripeApiError(
                429,
                "Too many requests hit the API too quickly.",
                type="invalid_request_error",
                code="rate_limit",
            )
        params = await _params(request, self.settings, api=endpoint.api)
        if endpoint.api and self.gate is not None:
            await self.gate(request)
        accepted = endpoint.accepts + (LIST_PARAMS if endpoint.method == "GET" else ())
        if endpoint.api:
            check_known(params, accepted)
        async with self.store.lock:
            account = _account(request, self.store, key) if endpoint.api else PLATFORM
            idem = request.headers.get("idempotency-key") if endpoint.method == "POST" else None
            scope = (f"{key}/{account}", idem or "")
            if endpoint.api and idem is not None and (replay := self.store.idempotency.get(scope)):
                return self._replay(replay, request, params, idem)
            call = Call(
                self.store,
                self.settings,
                account,
                params,
                dict(request.path_params),
                request.url.path,
            )
            saved = self.store.checkpoint() if request.method != "GET" else None
            request_id = new_id("req_", 14)
            self.store.request = {
                "id": request_id if endpoint.api else None,
                "idempotency_key": idem,
            }
            try:
                result = endpoint.handler(call)
            except StripeApiError as error:
                if saved is not None and not error.keep:
                    self.store.restore(saved)
                self.store.commit()
                if endpoint.api and idem is not None:
                    self.store.idempotency[scope] = Replay(
                        request.method, request.url.path, params.data, error.status, error.body()
                    )
                raise
            except Exception:
                if saved is not None:
                    self.store.restore(saved)
                raise
            self.store.commit()
            if isinstance(result, Response):
                return result
            body = self._expanded(result, account, params)
            if endpoint.api and idem is not None:
                # A copy: a replay answers what the first request did, whatever came since.
                self.store.idempotency[scope] = Replay(
                    request.method, request.url.path, params.data, 200, snapshot(body)
                )
            headers = {"Idempotency-Key": idem} if idem else None
            return _json(body, headers=headers, request_id=request_id)

    def _replay(self, replay: Replay, request: Request, params: Params, idem: str) -> Response:
        if (replay.method, replay.path, replay.params) != (
            request.method,
            request.url.path,
            params.data,
        ):
            raise StripeApiError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{idem}' if you meant to "
                "execute a different request.",
                type="idempotency_error",
            )
        return _json(
            replay.body,
            replay.status,
            headers={"Idempotency-Key": idem, "Idempotent-Replayed": "true"},
        )

    def _expanded(self, body: Obj, account: str, params: Params) -> Obj:
        paths = params.strings("expand")
        if not paths:
            return body
        expanded: Obj = expand(body, paths, lambda object_id: self.store.find(account, object_id))
        return expanded

    def route(self, endpoint: Endpoint) -> Route:
        async def serve(request: Request) -> Response:
            return await self.handle(endpoint, request)

        return Route(endpoint.path, serve, methods=[endpoint.method])


def _unrecognised(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = (
        f"Unrecognized request URL ({request.method}: {request.url.path}). Please see "
        "https://stripe.com/docs or we can help at https://support.stripe.com/."
    )
    return _json(StripeApiError(status, message).body(), status)


def endpoints() -> list[Endpoint]:
    from tessera.devstack.stripe_standin import (
        catalog,
        checkout,
        clock,
        connect,
        customers,
        disputes,
        events,
        invoices,
        payments,
        portal,
        search,
        subscriptions,
        webhook_endpoints,
    )

    return [
        # Before the resources: `/v1/products/search` is no product id.
        *search.ENDPOINTS,
        *catalog.ENDPOINTS,
        *customers.ENDPOINTS,
        *checkout.ENDPOINTS,
        *subscriptions.ENDPOINTS,
        *invoices.ENDPOINTS,
        *payments.ENDPOINTS,
        *disputes.ENDPOINTS,
        *clock.ENDPOINTS,
        *connect.ENDPOINTS,
        *portal.ENDPOINTS,
        *webhook_endpoints.ENDPOINTS,
        *events.ENDPOINTS,
    ]


def create_app(settings: StandInSettings | None = None) -> Starlette:
    """The stand-in as an ASGI app; `app.state.standin` holds its state (tests read it)."""
    standin = StandIn(settings or StandInSettings())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = Path(standin.settings.state_file) if standin.settings.state_file else None
        if state is not None:
            standin.store.load(state)
        try:
            async with standin.deliverer.running():
                yield
        finally:
            if state is not None:
                standin.store.save(state)

    handlers: dict[Any, Any] = {404: _unrecognised, 405: _unrecognised}
    from tessera.devstack.stripe_standin.events import deliveries

    app = Starlette(
        routes=[
            *(standin.route(e) for e in endpoints()),
            Route("/_standin/deliveries", deliveries, methods=["GET"]),
        ],
        lifespan=lifespan,
        exception_handlers=handlers,
    )
    app.state.standin = standin
    return app
