"""Auth's process: FastAPI for HTTP, FastStream for events."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from faststream.nats import NatsRouter

from tessera.auth.settings import AuthSettings
from tessera.auth.users import subscribers as user_subscribers
from tessera.shared.service import Runtime, ServiceSpec, create_service_app
from tessera.shared.settings import InfraSettings, load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def register_subscribers(runtime: Runtime, router: NatsRouter) -> None:
    user_subscribers.register(runtime, router)


def create_app(settings: AuthSettings | None = None, infra: InfraSettings | None = None) -> FastAPI:
    return create_service_app(
        ServiceSpec(
            name="auth",
            title="Tessera auth",
            version="0.1.0",
            settings=settings or load_settings(AuthSettings),
            infra=infra or load_settings(InfraSettings),
            migrations=MIGRATIONS,
            subscribers=register_subscribers,
        )
    )
