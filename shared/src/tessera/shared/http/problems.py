"""RFC 9457 problem details. Domain code raises a `Problem` subclass; one set of handlers
renders every error as `application/problem+json` and never leaks internals."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tessera.shared.http.context import current_request_id

log = logging.getLogger("tessera.http")

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:tessera:problem:"


class Problem(Exception):
    """Base of domain errors rendered as problem+json. Subclasses set status, slug, title."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions


class NotFound(Problem):
    status = 404
    slug = "not-found"
    title = "Not found"


class RateLimited(Problem):
    """Refused by a rate limit: 429 with `Retry-After` (the seconds until a retry can
    succeed) as a header and as the `retry_after` member. Every limiter raises this one."""

    status = 429
    slug = "rate-limited"
    title = "Too many requests"

    def __init__(
        self, retry_after: int, detail: str = "Too many requests; try again later."
    ) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, retry_after=retry_after)
        self.retry_after = retry_after


class PayloadTooLarge(StarletteHTTPException):
    """Raised while the body streams in, past the limit. An HTTPException so that FastAPI's
    body parsing lets it through instead of turning it into a generic 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body exceeds {limit} bytes.")
        self.limit = limit


class ServiceUnavailable(Problem):
    status = 503
    slug = "service-unavailable"
    title = "Service unavailable"


HTTP_TITLES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-failed", "Request validation failed"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal server error"),
    503: ("service-unavailable", "Service unavailable"),
}


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_PREFIX + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    body.update(extensions)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def public_validation_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo the input back: it may be huge, or a secret the caller mistyped.
    return [
        {
            "loc": [str(p) for p in item.get("loc", ())],
            "msg": item.get("msg", ""),
            "type": item.get("type", ""),
        }
        for item in error.errors()[:20]
    ]


async def handle_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        exc.status, exc.slug, exc.title, exc.detail, headers=exc.headers, **exc.extensions
    )


async def handle_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = public_validation_errors(exc)
    if any(e["type"] == "json_invalid" for e in errors):
        return problem_response(
            400, "malformed-body", "Malformed body", "The body is not valid JSON."
        )
    return problem_response(422, *HTTP_TITLES[422], errors=errors)


async def handle_http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug, title = HTTP_TITLES.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) and exc.status_code < 500 else None
    return problem_response(exc.status_code, slug, title, detail, headers=exc.headers)


async def handle_dependency_down(_: Request, exc: Exception) -> JSONResponse:
    # Fail closed and say so: the caller may retry; nothing was half-done (the transaction
    # that needed the dependency never committed).
    log.warning("http.request.dependency_unavailable", extra={"error": type(exc).__name__})
    return problem_response(
        503,
        "dependency-unavailable",
        "Service temporarily unavailable",
        "A service this request needs is not answering; try again shortly.",
        headers={"Retry-After": "5"},
    )


def dependency_errors() -> tuple[type[Exception], ...]:
    """Errors that mean Postgres or Redis is unreachable, not that the request was bad."""
    import asyncpg
    from redis import exceptions as redis_errors

    return (
        redis_errors.ConnectionError,
        redis_errors.TimeoutError,
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        # A connection the server just terminated (pg_terminate_backend, a restart) can be
        # handed out before its socket closes: using it raises one of these.
        asyncpg.exceptions.InternalClientError,
        asyncpg.exceptions.AdminShutdownError,
        asyncpg.exceptions.CrashShutdownError,
        asyncpg.exceptions.CannotConnectNowError,
        asyncpg.exceptions.TooManyConnectionsError,
        ConnectionRefusedError,
        ConnectionResetError,
    )


async def handle_unstorable(_: Request, exc: Exception) -> JSONResponse:
    # Postgres refused a value the request carried (a NUL character, a number or date out
    # of its range): bad input, not a failure. Its transaction rolled back; the SQLSTATE is
    # logged in case the value was ours rather than the caller's.
    log.warning(
        "http.request.unstorable_value",
        extra={"error": type(exc).__name__, "sqlstate": getattr(exc, "sqlstate", None)},
    )
    return problem_response(
        400,
        "unstorable-value",
        "Unstorable value",
        "The request holds a value that cannot be stored (a NUL character, or a number or "
        "date out of range).",
    )


async def handle_unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("http.request.unhandled", exc_info=exc)
    return problem_response(500, *HTTP_TITLES[500])


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, handle_problem)
    app.add_exception_handler(RequestValidationError, handle_validation)
    app.add_exception_handler(StarletteHTTPException, handle_http)
    for error in dependency_errors():
        app.add_exception_handler(error, handle_dependency_down)
    import asyncpg

    app.add_exception_handler(asyncpg.exceptions.DataError, handle_unstorable)
    app.add_exception_handler(Exception, handle_unexpected)
