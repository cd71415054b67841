"""Webhooks' process: FastAPI for the seller API, FastStream for the events it publishes
onward, and the delivery worker."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from tessera.shared.service import ServiceSpec, create_service_app
from tessera.shared.settings import InfraSettings, load_settings
from tessera.webhooks.context import Webhooks
from tessera.webhooks.deliveries import retention
from tessera.webhooks.deliveries.worker import Worker
from tessera.webhooks.intake import subscribers
from tessera.webhooks.seller_api import deliveries as delivery_routes
from tessera.webhooks.seller_api import routes as endpoint_routes
from tessera.webhooks.settings import WebhooksSettings, refuse_dev_secrets

MIGRATIONS = Path(__file__).parent / "migrations"


async def start(webhooks: Webhooks) -> None:
    # Replicas that only serve HTTP (run_workers false) deliver nothing.
    if webhooks.settings.run_workers:
        worker = Worker(
            webhooks.pool, webhooks.settings, webhooks.public_targets_only, webhooks.resolver,
            webhooks.sealer,
        )  # fmt: skip
        webhooks.tasks.append(asyncio.create_task(worker.run()))
        settings = webhooks.settings
        sweeping = retention.run(
            webhooks.pool, settings.retention_seconds, settings.retention_batch,
            settings.retention_sweep_seconds,
        )  # fmt: skip
        webhooks.tasks.append(asyncio.create_task(sweeping))


def create_app(
    settings: WebhooksSettings | None = None,
    infra: InfraSettings | None = None,
    webhooks: Webhooks | None = None,
) -> FastAPI:
    settings = settings or load_settings(WebhooksSettings)
    infra = infra or load_settings(InfraSettings)
    refuse_dev_secrets(settings, infra)
    return create_service_app(
        ServiceSpec(
            context=webhooks or Webhooks.of(settings, infra),
            title="Tessera webhooks",
            version="0.1.0",
            migrations=MIGRATIONS,
            routers=(endpoint_routes.router, delivery_routes.router),
            subscribers=subscribers.register,
            on_startup=(start,),
        )
    )
