"""`/healthz` (the process is alive) and `/readyz` (its dependencies answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

Check = Callable[[], Awaitable[object]]


class Readiness(BaseModel):
    """Each dependency's check (`postgres`, `redis`, `nats`, the portal's upstreams)."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, Literal["ok", "down"]]


READINESS: dict[int | str, dict[str, Any]] = {
    200: {"model": Readiness, "description": "Every dependency answers."},
    503: {"model": Readiness, "description": "A dependency does not answer (`checks` says which)."},
}


async def run_check(check: Check, timeout: float) -> str:
    try:
        await asyncio.wait_for(check(), timeout)
    except Exception:
        return "down"
    return "ok"


def health_router(checks: Callable[[], Mapping[str, Check]], timeout: float = 1.0) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: Postgres, Redis and NATS answer",
        response_model=None,
        responses=READINESS,
    )
    async def readyz() -> JSONResponse:
        named = dict(checks())
        results = await asyncio.gather(*(run_check(c, timeout) for c in named.values()))
        status = dict(zip(named, results, strict=True))
        ready = all(r == "ok" for r in results)
        body = {"status": "ok" if ready else "unavailable", "checks": status}
        return JSONResponse(body, status_code=200 if ready else 503)

    return router
