"""How every service's HTTP server runs: uvicorn, with each answer written in one system call.

uvicorn writes a response's head and its body with two `transport.write` calls, and uvloop
sends each at once: two system calls and two packets for every small JSON answer, which on
the hot paths (validate, the Stripe webhook) is a fifth of a request's CPU.
`CoalescingHttpTools` hands uvicorn's protocol a transport that gathers what is written
during one turn of the event loop and sends it in one call at the end of that turn: an
answer's head and body leave together, nothing waits past the callbacks already queued,
and a close sends what is gathered first. (Measured on the bare FastAPI endpoint, seven
alternating pairs: 8 to 28 % more requests per second, docs/performance.md.)

`run_server` is what `tessera-<service> serve` runs; `python -m tessera.shared.http.server
tessera.<service>.app:create_app --port N` does the same for `./dev` and the benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport whose writes within one event-loop turn go out as one."""

    __slots__ = ("_loop", "_pending", "_scheduled", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._pending.append(bytes(data))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()  # what was written before the close still goes out first
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through a `CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]


def run_server(app_path: str, *, host: str, port: int, workers: int = 1, **options: Any) -> None:
    """Serve the app factory `app_path` with uvloop, httptools and one write per answer."""
    uvicorn.run(
        app_path,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=CoalescingHttpTools,
        server_header=False,
        # Forwarded headers are the app's business (shared/http/forwarded.py), one rule
        # however the server is started; uvicorn's would trust 127.0.0.1 by default.
        proxy_headers=False,
        **options,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Run a Tessera service's HTTP server.")
    parser.add_argument("app", help="the app factory, e.g. tessera.billing.app:create_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    run_server(
        args.app,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=False,
    )


if __name__ == "__main__":
    main()
