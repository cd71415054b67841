"""Portal-web owns no store: it is ready when the services it calls answer."""

from typing import Any

import httpx

from tessera.devstack.infra import free_port
from tessera.portal.app import create_app
from tessera.portal.settings import PortalSettings
from tessera.shared.settings import InfraSettings


def unreachable() -> str:
    return f"http://127.0.0.1:{free_port()}"


async def test_it_is_alive_but_not_ready_without_its_upstreams(
    running: Any, infra_settings: InfraSettings
) -> None:
    settings = PortalSettings(
        auth_url=unreachable(), billing_url=unreachable(), licensing_url=unreachable()
    )
    app = create_app(settings, infra_settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {
        "redis": "ok",
        "auth": "down",
        "billing": "down",
        "licensing": "down",
    }
