"""The kernel's HTTP server over a real socket: every answer arrives whole and in order
through the coalescing transport (kept-alive, streamed, closed), and an answer's head and
body leave in one write. And the uvicorn internals it subclasses are still there: the
pyproject bounds uvicorn below its next minor release, and the last test here names what
moved when an upgrade changes them."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from uvicorn.protocols import utils as uvicorn_utils
from uvicorn.protocols.http import flow_control, httptools_impl

from tessera.devstack.infra import free_port
from tessera.devstack.serving import LoopServer
from tessera.shared.http.server import CoalescingHttpTools, CoalescingTransport


def an_app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(payload: dict[str, int]) -> dict[str, int]:
        return payload

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for n in range(50):
                yield f"chunk {n};".encode()
                await asyncio.sleep(0)

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/bye")
    async def bye() -> dict[str, str]:
        return {"bye": "now"}

    return app


@pytest.fixture
async def served() -> AsyncIterator[str]:
    port = free_port()
    served = await LoopServer.start(an_app(), port, http=CoalescingHttpTools)
    yield f"http://127.0.0.1:{port}"
    await served.stop()


async def test_kept_alive_streamed_and_closed_answers_arrive_whole(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        answers = await asyncio.gather(*(client.post("/echo", json={"n": n}) for n in range(40)))
        assert [a.json() for a in answers] == [{"n": n} for n in range(40)]
        streamed = await client.get("/stream")
        assert streamed.text == "".join(f"chunk {n};" for n in range(50))
        closed = await client.get("/bye", headers={"connection": "close"})
        assert closed.json() == {"bye": "now"}
        assert closed.headers["connection"] == "close"
        assert (await client.post("/echo", json={"n": 1})).json() == {"n": 1}


async def test_a_head_and_its_body_leave_in_one_write() -> None:
    class Recording:
        def __init__(self) -> None:
            self.writes: list[bytes] = []
            self.closed = False

        def write(self, data: bytes) -> None:
            self.writes.append(data)

        def is_closing(self) -> bool:
            return self.closed

        def close(self) -> None:
            self.closed = True

    real = Recording()
    transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert real.writes == []
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    transport.write(b"last words")
    transport.close()  # sent before the close, not dropped
    assert real.writes[-1] == b"last words" and real.closed


# What uvicorn does with the transport `CoalescingHttpTools` hands it. The writes and the
# close are intercepted (they must go out in order, gathered); the rest is safe to pass to
# the socket's transport as it is. A new call (say `writelines`, which would overtake the
# gathered writes) must be looked at before uvicorn is upgraded.
INTERCEPTED = {"write", "close", "write_eof", "get_write_buffer_size"}
PASSED_THROUGH = {"is_closing", "get_extra_info", "pause_reading", "resume_reading", "set_protocol"}


def test_the_uvicorn_internals_the_server_relies_on_have_not_moved() -> None:
    """`CoalescingHttpTools` subclasses uvicorn's private `HttpToolsProtocol`: it overrides
    `connection_made(transport)`, reads `self.loop` (set by `__init__`), and is handed to
    uvicorn as `http=` (a class). If this fails after an upgrade, the message names what
    moved; fix server.py (or drop the subclass) before raising uvicorn's upper bound."""
    moved: list[str] = []
    protocol = httptools_impl.HttpToolsProtocol
    made = getattr(protocol, "connection_made", None)
    if made is None or list(inspect.signature(made).parameters) != ["self", "transport"]:
        moved.append("HttpToolsProtocol.connection_made(self, transport)")
    if "self.loop = " not in inspect.getsource(protocol.__init__):
        moved.append("HttpToolsProtocol.__init__ no longer sets self.loop")
    calls = set()
    for module in (httptools_impl, flow_control, uvicorn_utils):
        calls |= set(re.findall(r"transport\.(\w+)\(", inspect.getsource(module)))
    moved += [
        f"uvicorn now calls transport.{name}()"
        for name in sorted(calls - INTERCEPTED - PASSED_THROUGH)
    ]
    if not {"write", "close", "is_closing"} <= calls:
        moved.append(f"uvicorn's protocol writes differently now (calls: {sorted(calls)})")
    config_options = inspect.signature(uvicorn.Config.__init__).parameters
    moved += [
        f"uvicorn.Config has no `{name}` option"
        for name in ("http", "loop", "factory", "server_header", "proxy_headers")
        if name not in config_options
    ]
    config = uvicorn.Config(an_app(), http=CoalescingHttpTools)
    config.load()
    if config.http_protocol_class is not CoalescingHttpTools:
        moved.append("uvicorn.Config(http=<class>) no longer serves with that class")
    assert not moved, f"uvicorn {uvicorn.__version__} moved: " + "; ".join(moved)
