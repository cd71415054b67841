"""The apps `api_keys.py` compares: the same endpoint bare, behind a dependency that only
reads the `Authorization` header, and behind a secret key.

They differ only in the route's dependency (and the key book behind it): `header()` minus
`bare()` is what any FastAPI dependency costs a request, `keyed()` minus `header()` is
what checking the key adds on top. The key book
follows the run's `APIKEYS` stream (`BENCH_NATS_URL`, `BENCH_NAMESPACE`); `/readyz`
answers 200 once its replay is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Annotated
from uuid import UUID

import nats
from fastapi import Depends, FastAPI, Request, Response

from tessera.shared.api_keys import KeyBook, SecretSellerDep
from tessera.shared.directory.sellers import SellerBook
from tessera.shared.events.auth import SellerChanged
from tessera.shared.events.topology import Namespace
from tessera.shared.http.problems import install_problem_handlers


def always_ready() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    return app


def bare() -> FastAPI:
    app = always_ready()

    @app.get("/v1/ping")
    async def ping() -> dict[str, str]:
        return {"seller": "none"}

    return app


async def authorization(request: Request) -> str:
    return request.headers.get("authorization", "")


def header() -> FastAPI:
    app = always_ready()

    @app.get("/v1/ping")
    async def ping(value: Annotated[str, Depends(authorization)]) -> dict[str, str]:
        return {"seller": value[:7]}

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
    # The keys' seller (api_keys.SELLER) with its platform plan active, as the directory
    # would hold it: a live key's check includes the plan's dictionary lookup.
    sellers = SellerBook()
    sellers.apply(
        SellerChanged(
            seller_id=UUID("0193a3c0-0000-7000-8000-00000000beef"), mode="live",
            slug="bench-seller", name="Bench", signup_policy="closed", status="active",
            version=1, plan_status="active",
        )
    )  # fmt: skip
    # As a service holds them: the key dependencies read `app.state.context.key_book` and
    # `app.state.context.sellers`.
    app.state.context = SimpleNamespace(key_book=book, sellers=sellers)

    @app.get("/readyz")
    async def ready(response: Response) -> dict[str, str]:
        response.status_code = 200 if book.ready else 503
        return {"status": "ok" if book.ready else "replaying"}

    @app.get("/v1/ping")
    async def ping(seller: SecretSellerDep) -> dict[str, str]:
        # A str the credential already holds, as `header()` answers a slice: str(UUID) alone
        # costs 1.4 µs, which is the response's, not the check's.
        return {"seller": seller.kind}

    return app
