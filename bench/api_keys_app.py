"""The two apps `api_keys.py` compares: the same endpoint bare and behind a secret key.

`bare()` and `keyed()` differ only in the route's dependency (and the key book behind it),
so the difference between them is what key checking adds to a request. The key book
follows the run's `APIKEYS` stream (`BENCH_NATS_URL`, `BENCH_NAMESPACE`); `/readyz`
answers 200 once its replay is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import nats
from fastapi import FastAPI, Response

from tessera.shared.api_keys import KeyBook, SecretSellerDep
from tessera.shared.events.topology import Namespace
from tessera.shared.http.problems import install_problem_handlers


def bare() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/ping")
    async def ping() -> dict[str, str]:
        return {"seller": "none"}

    return app


def keyed() -> FastAPI:
    book = KeyBook()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nc = await nats.connect(os.environ["BENCH_NATS_URL"], max_reconnect_attempts=-1)
        follower = asyncio.create_task(book.follow(nc, Namespace(os.environ["BENCH_NAMESPACE"])))
        yield
        follower.cancel()
        await nc.close()

    app = FastAPI(lifespan=lifespan)
    install_problem_handlers(app)
    app.state.key_book = book

    @app.get("/readyz")
    async def ready(response: Response) -> dict[str, str]:
        response.status_code = 200 if book.ready else 503
        return {"status": "ok" if book.ready else "replaying"}

    @app.get("/v1/ping")
    async def ping(seller: SecretSellerDep) -> dict[str, str]:
        return {"seller": str(seller.seller_id)}

    return app
