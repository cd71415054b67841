"""The kernel's HTTP server over a real socket: every answer arrives whole and in order
through the coalescing transport (kept-alive, streamed, closed), and an answer's head and
body leave in one write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

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
