"""Per-request context: the request id (readable from logs and error bodies) and the
caller's address."""

from __future__ import annotations

from contextvars import ContextVar

from starlette.requests import Request

_request_id: ContextVar[str | None] = ContextVar("tessera_request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> object:
    return _request_id.set(value)


def reset_request_id(token: object) -> None:
    _request_id.reset(token)  # type: ignore[arg-type]


def client_ip(request: Request) -> str:
    """The caller's address: the peer's, or the client a trusted proxy forwarded for
    (http/forwarded.py resolves it before anything else runs)."""
    return request.client.host if request.client else "unknown"
