"""The benches' `--server` option (bench/harness.py): the kernel's app served by the command
the benches use, on uvicorn (as production runs it) and on granian, answers the same: the
lifespan ran, the forwarded-header rule names the client, a problem renders with its
headers. So a granian measurement measures the same app, not a half-working one. And the
fan-out bench's receivers count a webhook only when its signature verifies."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tessera.devstack.infra import free_port

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from tessera.shared.http.context import client_ip
from tessera.shared.http.forwarded import ServiceApp
from tessera.shared.http.middleware import RequestContextMiddleware
from tessera.shared.http.problems import RateLimited, install_problem_handlers


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.started = "yes"
    yield


def create_app() -> FastAPI:
    app = ServiceApp(lifespan=lifespan)
    install_problem_handlers(app)

    @app.get("/readyz")
    async def ready(request: Request) -> dict[str, str]:
        return {"started": request.app.state.started, "client": client_ip(request)}

    @app.get("/limited")
    async def limited() -> None:
        raise RateLimited(3)

    app.add_middleware(RequestContextMiddleware)
    app.trust_proxies(["127.0.0.1"])
    return app
"""


def load_harness() -> ModuleType:
    """bench/harness.py, a fresh copy (its `SERVER` at the default)."""
    spec = importlib.util.spec_from_file_location("bench_harness", ROOT / "bench/harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["uvicorn", "granian"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    (tmp_path / "probe_app.py").write_text(PROBE)
    port = free_port()
    command = load_harness().service_command("probe_app:create_app", port, server=request.param)
    process = subprocess.Popen(
        command, env={**os.environ, "PYTHONPATH": str(tmp_path)}, cwd=tmp_path
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, f"{request.param} exited: {command}"
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_benches_serve_the_kernel_app_alike_on_each_server(served: str) -> None:
    ready = httpx.get(f"{served}/readyz", headers={"x-forwarded-for": "203.0.113.7"})
    assert ready.json() == {"started": "yes", "client": "203.0.113.7"}
    assert ready.headers["x-content-type-options"] == "nosniff"
    limited = httpx.get(f"{served}/limited", headers={"x-request-id": "bench-probe-1"})
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["retry_after"] == 3
    assert limited.json()["request_id"] == "bench-probe-1"


def test_the_server_option_refuses_an_unknown_server() -> None:
    harness = load_harness()
    with pytest.raises(ValueError, match="hypercorn"):
        harness.use_server("hypercorn")
    assert harness.service_command("m:f", 1)[2] == "tessera.shared.http.server"
    harness.use_server("granian")
    assert harness.service_command("m:f", 1)[2] == "granian"
    assert sys.executable == harness.service_command("m:f", 1)[0]


def load_bench_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_fanout_receivers_count_only_what_verifies() -> None:
    """bench/webhooks_fanout.py counts a delivery only when its receiver verified the
    signature under that endpoint's secret (bench/webhooks_receiver.py): a webhook signed
    with another endpoint's secret, or unsigned, is refused and reported, not counted."""
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook

    receiver = load_bench_module("webhooks_receiver")
    secrets = {
        "0": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "1": "whsec_" + "c2Vjb25kLXNlY3JldC1ieXRlcy0xMjM0",
    }
    body = b'{"type":"order.paid"}'
    now = datetime.now(UTC)

    def signed(secret: str, webhook_id: str) -> dict[str, str]:
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(webhook_id, now, body.decode()),
        }

    transport = httpx.ASGITransport(app=receiver.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as http:
        assert (await http.put("/secrets", json=secrets)).json() == {"endpoints": 2}
        good = await http.post("/r/0", content=body, headers=signed(secrets["0"], "evt_1"))
        crossed = await http.post("/r/1", content=body, headers=signed(secrets["0"], "evt_2"))
        unsigned = await http.post("/r/1", content=body, headers={"webhook-id": "evt_3"})
        unknown = await http.post("/r/7", content=body, headers=signed(secrets["0"], "evt_4"))
        taken = (await http.post("/receipts/take")).json()
        again = (await http.post("/receipts/take")).json()
    assert good.status_code == 204
    assert [crossed.status_code, unsigned.status_code, unknown.status_code] == [400, 400, 400]
    assert [(n, hook) for n, hook, _ in taken["receipts"]] == [(0, "evt_1")]
    assert taken["refused"] == 3
    assert again == {"receipts": [], "refused": 0}
