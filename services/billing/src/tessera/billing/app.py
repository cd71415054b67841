"""Billing's process: FastAPI for HTTP, FastStream for events."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI
from faststream.nats import NatsRouter
from starlette.types import ASGIApp

from tessera.billing.admin import routes as admin_routes
from tessera.billing.catalog import routes as catalog_routes
from tessera.billing.catalog.service import seed_catalog
from tessera.billing.checkout import routes as checkout_routes
from tessera.billing.orders import routes as order_routes
from tessera.billing.orders import subscribers as order_subscribers
from tessera.billing.settings import BillingSettings, check_production
from tessera.billing.stripe.gateway import StripeGateway
from tessera.billing.webhooks import routes as webhook_routes
from tessera.billing.webhooks.applier import WebhookApplier
from tessera.billing.webhooks.fast_path import WebhookFastPath
from tessera.billing.webhooks.recorder import DeliveryRecorder
from tessera.shared.service import Runtime, ServiceSpec, create_service_app
from tessera.shared.settings import Environment, InfraSettings, load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def register_subscribers(runtime: Runtime, router: NatsRouter) -> None:
    order_subscribers.register(runtime, router)


def create_app(
    settings: BillingSettings | None = None, infra: InfraSettings | None = None
) -> FastAPI:
    billing = settings or load_settings(BillingSettings)
    platform = infra or load_settings(InfraSettings)
    check_production(billing, platform)

    async def seed(runtime: Runtime) -> None:
        if billing.catalog_file.exists():
            await seed_catalog(runtime.db(), billing.catalog_file)

    async def start_applier(runtime: Runtime) -> None:
        if billing.run_workers:
            applier = WebhookApplier(runtime.db())
            runtime.tasks.append(asyncio.create_task(applier.run()))

    recorder = DeliveryRecorder()
    hsts = platform.env == Environment.PRODUCTION

    def fast_path(whole: ASGIApp, app: FastAPI) -> WebhookFastPath:
        # The webhook's common case goes in front of the whole app (webhooks/fast_path.py).
        return WebhookFastPath(
            whole, app, recorder, max_body_bytes=billing.webhook_max_bytes, hsts=hsts
        )

    app = create_service_app(
        ServiceSpec(
            name="billing",
            title="Tessera billing",
            version="0.1.0",
            settings=billing,
            infra=platform,
            migrations=MIGRATIONS,
            subscribers=register_subscribers,
            routers=(
                webhook_routes.router,
                checkout_routes.router,
                order_routes.router,
                admin_routes.router,
                catalog_routes.router,
            ),
            on_startup=(seed, start_applier),
            body_limits={"/webhooks/stripe": billing.webhook_max_bytes},
            fast_path=fast_path,
        )
    )
    app.state.stripe = None if billing.test_checkout else StripeGateway(billing)
    app.state.deliveries = recorder
    return app
