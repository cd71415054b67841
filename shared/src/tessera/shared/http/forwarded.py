"""Who the client is behind a proxy: one rule for the whole app, fast paths included.

A request's client address is the TCP peer's, unless the peer is a configured proxy
(`TESSERA_FORWARDED_ALLOW_IPS`: addresses or networks, none by default): then the client is
the nearest address in `X-Forwarded-For` that is not itself a trusted proxy (uvicorn's
`ProxyHeadersMiddleware` does the parsing). An untrusted peer's `X-Forwarded-For` is ignored,
so nobody picks their own rate-limit bucket by sending one; the RFC 7239 `Forwarded` header is
never read. The rule runs first, in the app's own `__call__` (`ServiceApp`), in front of the
`FastPath`, so the fast paths and the full stack see the same client; uvicorn's own,
server-level handling is off (`run_server`), or a service would depend on how it was
started.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Any, cast

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware


class ServiceApp(FastAPI):
    """A FastAPI app whose every request first goes through the forwarded-header rule and
    then the service's fast path, if it has one, in its own `__call__`: plain ASGI layers
    around the app (forwarded rule -> fast path -> FastAPI's own middleware stack), so
    neither touches the stack that FastAPI and the instrumentation build."""

    _forwarded: ProxyHeadersMiddleware | None = None
    # What answers after the forwarded rule: the fast path around `_serve`, or `_serve`.
    front: ASGIApp | None = None

    def trust_proxies(self, allowed: Sequence[str]) -> None:
        self._forwarded = (
            ProxyHeadersMiddleware(cast(Any, self._inner), trusted_hosts=list(allowed))
            if allowed
            else None
        )

    def put_in_front(self, wrap: Callable[[ASGIApp], ASGIApp]) -> None:
        """Answer through `wrap(the whole app)`: a fast path, which hands what it does not
        answer to the app."""
        self.front = wrap(self._serve)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    async def _inner(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is None:
            await super().__call__(scope, receive, send)
        else:
            await self.front(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._forwarded is not None:
            await self._forwarded(cast(Any, scope), cast(Any, receive), cast(Any, send))
        elif self.front is not None:
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def parse_allowed(value: str | Sequence[str]) -> list[str]:
    """`10.0.0.5, 172.18.0.0/16` (or a list) -> the entries, each checked to be an address
    or a network; '*' (everyone) is refused: trusting every peer is what this prevents."""
    items = value.split(",") if isinstance(value, str) else list(value)
    entries = [item.strip() for item in items if item.strip()]
    for entry in entries:
        ipaddress.ip_network(entry, strict=False)  # ValueError names the bad entry
    return entries
