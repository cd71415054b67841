"""Portal-web's process."""

from __future__ import annotations

from fastapi import FastAPI

from tessera.portal.settings import PortalSettings
from tessera.portal.upstreams import upstream_checks
from tessera.shared.service import ServiceSpec, create_service_app
from tessera.shared.settings import InfraSettings, load_settings


def create_app(
    settings: PortalSettings | None = None, infra: InfraSettings | None = None
) -> FastAPI:
    portal_settings = settings or load_settings(PortalSettings)
    return create_service_app(
        ServiceSpec(
            name="portal",
            title="Tessera portal",
            version="0.1.0",
            settings=portal_settings,
            infra=infra or load_settings(InfraSettings),
            uses_redis=False,
            uses_nats=False,
            extra_checks=lambda _: upstream_checks(portal_settings),
        )
    )
