"""Readiness of the services the portal calls: each must answer its `/healthz`."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from tessera.portal.settings import PortalSettings
from tessera.shared.http.health import Check


def upstream_checks(settings: PortalSettings) -> Mapping[str, Check]:
    def check(base: str) -> Check:
        async def probe() -> None:
            async with httpx.AsyncClient(timeout=0.8) as client:
                response = await client.get(base.rstrip("/") + "/healthz")
                response.raise_for_status()

        return probe

    return {
        "auth": check(str(settings.auth_url)),
        "billing": check(str(settings.billing_url)),
        "licensing": check(str(settings.licensing_url)),
    }
