"""Per-request context: the request id (readable from logs and error bodies) and the
caller's address."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

_request_id: ContextVar[str | None] = ContextVar("tessera_request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> object:
    return _request_id.set(value)


def reset_request_id(token: object) -> None:
    _request_id.reset(token)  # type: ignore[arg-type]


def client_ip(request: Mapping[str, Any]) -> str:
    """The caller's address, from a `Request` or a bare ASGI scope (the fast paths): the
    peer's, or the client a trusted proxy forwarded for (http/forwarded.py resolves it
    before anything else runs, TESSERA_FORWARDED_ALLOW_IPS); "unknown" when the server
    names no peer. The one rule: nothing reads `scope["client"]` by hand."""
    client = request.get("client")
    return str(client[0]) if client else "unknown"
