"""Exceptions. Every refusal from a Tessera service is an RFC 7807 problem; each becomes a
`ProblemError` subclass chosen by its `code` first, then by its status, carrying the
problem's fields and the answer's parsed RateLimit headers."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from tessera_client.ratelimit import RateLimit


class TesseraError(Exception):
    """Base of everything this client raises."""


class InvalidToken(TesseraError):
    """A customer's access token that does not verify (signature, expiry, issuer, audience,
    or another seller's or mode's token). One class for every defect, as the services do."""


class InvalidWebhook(TesseraError):
    """A webhook whose signature, timestamp or body does not verify."""


class ProblemError(TesseraError):
    """A problem+json answer (or any non-2xx answer, read as one)."""

    status_code: ClassVar[int | None] = None

    def __init__(self, status: int, problem: dict[str, Any], response: httpx.Response) -> None:
        self.status = status
        self.problem = problem
        self.type: str = str(problem.get("type", "about:blank"))
        self.code: str | None = problem.get("code") or _slug_of(self.type)
        self.title: str | None = problem.get("title")
        self.detail: str | None = problem.get("detail")
        self.rate_limit = RateLimit.from_headers(response.headers)
        self.headers = response.headers
        super().__init__(f"{status} {self.code}: {self.detail or self.title or ''}".rstrip())


def _slug_of(problem_type: str) -> str | None:
    # Tessera's types are `urn:tessera:problem:<slug>`.
    prefix = "urn:tessera:problem:"
    return problem_type[len(prefix) :] if problem_type.startswith(prefix) else None


class BadRequest(ProblemError):
    status_code = 400


class Unauthorized(ProblemError):
    status_code = 401


class PaymentRequired(ProblemError):
    """402 `platform-plan-inactive`: the seller's live keys wait for its platform plan."""

    status_code = 402


class PermissionDenied(ProblemError):
    status_code = 403


class NotFound(ProblemError):
    status_code = 404


class Conflict(ProblemError):
    status_code = 409


class ValidationFailed(ProblemError):
    status_code = 422


class RateLimited(ProblemError):
    """429: `retry_after` is the seconds until a retry can succeed (`Retry-After`)."""

    status_code = 429

    def __init__(self, status: int, problem: dict[str, Any], response: httpx.Response) -> None:
        super().__init__(status, problem, response)
        self.retry_after = _retry_after(response, problem)


class ServerError(ProblemError):
    """A 5xx that stayed a 5xx after the client's retries (where it retries)."""


class _Refused(PermissionDenied):
    """A usage refusal: where the seller wants the customer sent to upgrade."""

    def __init__(self, status: int, problem: dict[str, Any], response: httpx.Response) -> None:
        super().__init__(status, problem, response)
        self.upgrade_url: str | None = problem.get("upgrade_url")


class UsageLimitExceeded(_Refused):
    """403 `usage-limit-exceeded`: nothing was counted. Carries the standing."""

    def __init__(self, status: int, problem: dict[str, Any], response: httpx.Response) -> None:
        super().__init__(status, problem, response)
        self.used: int | None = problem.get("used")
        self.limit: int | None = problem.get("limit")
        self.remaining: int | None = problem.get("remaining")
        self.period_end: str | None = problem.get("period_end")


class FeatureNotEntitled(_Refused):
    """403 `feature-not-entitled`: no valid tier of the customer meters the feature."""


class IdempotencyKeyReused(Conflict):
    """409 `idempotency-key-reused`: the key was used with another customer, feature or
    amount."""


BY_CODE: dict[str, type[ProblemError]] = {
    "usage-limit-exceeded": UsageLimitExceeded,
    "feature-not-entitled": FeatureNotEntitled,
    "idempotency-key-reused": IdempotencyKeyReused,
    "rate-limited": RateLimited,
}
BY_STATUS: dict[int, type[ProblemError]] = {
    cls.status_code: cls
    for cls in (
        BadRequest, Unauthorized, PaymentRequired, PermissionDenied, NotFound, Conflict,
        ValidationFailed, RateLimited,
    )
    if cls.status_code is not None
}  # fmt: skip


def problem_error(response: httpx.Response) -> ProblemError:
    """The exception for a non-2xx answer."""
    try:
        body = response.json()
    except ValueError:
        body = None
    problem: dict[str, Any] = body if isinstance(body, dict) else {"detail": response.text[:500]}
    code = problem.get("code") or _slug_of(str(problem.get("type", "")))
    cls = BY_CODE.get(code or "") or BY_STATUS.get(response.status_code)
    if cls is None:
        cls = ServerError if response.status_code >= 500 else ProblemError
    return cls(response.status_code, problem, response)


def _retry_after(response: httpx.Response, problem: dict[str, Any]) -> int | None:
    raw = response.headers.get("retry-after")
    if raw is not None and raw.strip().isdigit():
        return int(raw)
    value = problem.get("retry_after")
    return value if isinstance(value, int) else None
