"""Billing's process: FastAPI for HTTP, FastStream for events."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from faststream.nats import NatsRouter

from tessera.billing.accounts import subscribers as account_subscribers
from tessera.billing.settings import BillingSettings
from tessera.shared.service import Runtime, ServiceSpec, create_service_app
from tessera.shared.settings import InfraSettings, load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def register_subscribers(runtime: Runtime, router: NatsRouter) -> None:
    account_subscribers.register(runtime, router)


def create_app(
    settings: BillingSettings | None = None, infra: InfraSettings | None = None
) -> FastAPI:
    return create_service_app(
        ServiceSpec(
            name="billing",
            title="Tessera billing",
            version="0.1.0",
            settings=settings or load_settings(BillingSettings),
            infra=infra or load_settings(InfraSettings),
            migrations=MIGRATIONS,
            subscribers=register_subscribers,
        )
    )
