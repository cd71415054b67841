"""An ASGI app on a real port in the running event loop: what the test suites, the dev mail
catcher and the fixtures that stand in for outside services share."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn


class LoopServer:
    """`await LoopServer.start(app, port)`, then `await server.stop()`."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None]) -> None:
        self.server = server
        self.task = task

    @classmethod
    async def start(
        cls, app: Any, port: int, *, host: str = "127.0.0.1", **config: Any
    ) -> LoopServer:
        """Serve until `stop`; raises whatever kept the server from starting."""
        config.setdefault("log_config", None)
        # As `run_server`: forwarded headers are the app's rule (shared/http/forwarded.py).
        config.setdefault("proxy_headers", False)
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **config))
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        return cls(server, task)

    async def stop(self, timeout: float | None = None) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, timeout)
