"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task per request on hot paths)."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable, Mapping

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tessera.shared.http.context import reset_request_id, set_request_id
from tessera.shared.http.problems import HTTP_TITLES, PayloadTooLarge, problem_response

log = logging.getLogger("tessera.http")

REQUEST_ID_HEADER = b"x-request-id"
# Accept a caller's id only if it is short and plain; anything else is replaced.
SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._\-]{8,128}$")

API_SECURITY_HEADERS: Mapping[str, str] = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "cache-control": "no-store",
}
HSTS = ("strict-transport-security", "max-age=63072000; includeSubDomains")


def security_headers(
    headers: Mapping[str, str] = API_SECURITY_HEADERS, *, hsts: bool = False
) -> list[tuple[bytes, bytes]]:
    """The security headers every response carries, as ASGI header pairs."""
    pairs = [(k.encode(), v.encode()) for k, v in headers.items()]
    if hsts:
        pairs.append((HSTS[0].encode(), HSTS[1].encode()))
    return pairs


class BodyLimitMiddleware:
    """413 for a body over `limit` bytes, counted as it streams in (a missing or lying
    Content-Length does not get past it)."""

    def __init__(
        self, app: ASGIApp, limit: int, path_limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        # Exact paths whose limit differs (e.g. Stripe webhooks may exceed the API default).
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.limit)
        declared = header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await self._reject(scope, receive, send, 400, "Invalid Content-Length.")
                return
            if int(declared) > limit:
                await self._reject(
                    scope, receive, send, 413, f"Request body exceeds {limit} bytes."
                )
                return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except PayloadTooLarge:
            if response_started:
                raise
            await self._reject(scope, receive, send, 413, f"Request body exceeds {limit} bytes.")

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        slug, title = HTTP_TITLES[status]
        response = problem_response(status, slug, title, detail, headers={"connection": "close"})
        await response(scope, receive, send)


class RequestContextMiddleware:
    """Request id (caller's if safe, else new) on the response and in logs; security
    headers on every response."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        headers: Mapping[str, str] = API_SECURITY_HEADERS,
        hsts: bool = False,
    ) -> None:
        self.app = app
        self.headers = security_headers(headers, hsts=hsts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(scope)
        token = set_request_id(request_id)
        extra = [*self.headers, (REQUEST_ID_HEADER, request_id.encode())]
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in extra if k not in present
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:
            return  # the caller hung up mid-body: nobody to answer, nothing went wrong here
        except Exception:
            # Rendered here, inside the request's context, so the 500 still carries the
            # request id and the security headers (Starlette's outermost handler would not).
            if started:
                raise
            log.exception("http.request.unhandled")
            response = problem_response(500, *HTTP_TITLES[500])
            await response(scope, receive, send_with_headers)
        finally:
            reset_request_id(token)


def new_request_id() -> str:
    return secrets.token_hex(12)


def request_id_for(scope: Scope) -> str:
    """The caller's `X-Request-Id` when it is short and plain, else a new one."""
    incoming = header(scope, REQUEST_ID_HEADER)
    return incoming.decode() if incoming and SAFE_REQUEST_ID.match(incoming) else new_request_id()


def header(scope: Scope, name: bytes) -> bytes | None:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())
    for key, value in headers:
        if key == name:
            return value
    return None
