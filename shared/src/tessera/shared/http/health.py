"""`/healthz` (the process is alive) and `/readyz` (its dependencies answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter
from fastapi.responses import JSONResponse

Check = Callable[[], Awaitable[object]]


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

    @router.get("/readyz", summary="Readiness: Postgres, Redis and NATS answer")
    async def readyz() -> JSONResponse:
        named = dict(checks())
        results = await asyncio.gather(*(run_check(c, timeout) for c in named.values()))
        status = dict(zip(named, results, strict=True))
        ready = all(r == "ok" for r in results)
        body = {"status": "ok" if ready else "unavailable", "checks": status}
        return JSONResponse(body, status_code=200 if ready else 503)

    return router
