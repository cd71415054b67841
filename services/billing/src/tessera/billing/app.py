"""Billing's process: FastAPI for HTTP, FastStream for events."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI
from faststream.nats import NatsRouter
from starlette.types import ASGIApp

from tessera.billing.accounts import subscribers as account_subscribers
from tessera.billing.admin import routes as admin_routes
from tessera.billing.catalog import routes as catalog_routes
from tessera.billing.catalog.service import seed_catalog
from tessera.billing.checkout import routes as checkout_routes
from tessera.billing.connect import routes as connect_routes
from tessera.billing.context import OPERATOR_TENANT, Billing
from tessera.billing.orders import routes as order_routes
from tessera.billing.orders import subscribers as order_subscribers
from tessera.billing.payments.worker import FeeFetcher
from tessera.billing.platform_plan import routes as platform_plan_routes
from tessera.billing.revenue import routes as revenue_routes
from tessera.billing.settings import BillingSettings, check_production
from tessera.billing.stripe_sync.worker import CatalogSync
from tessera.billing.subscriptions import routes as subscription_routes
from tessera.billing.webhooks import routes as webhook_routes
from tessera.billing.webhooks import service as webhook_service
from tessera.billing.webhooks.applier import WebhookApplier
from tessera.billing.webhooks.fast_path import ConnectFastPath, WebhookFastPath
from tessera.shared.service import ServiceSpec, create_service_app
from tessera.shared.settings import Environment, InfraSettings, load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def register_subscribers(billing: Billing, router: NatsRouter) -> None:
    account_subscribers.register(billing, router)
    order_subscribers.register(billing, router)


async def seed(billing: Billing) -> None:
    if billing.settings.catalog_file.exists():
        # The operator's catalog file is the home seller's live catalog.
        await seed_catalog(
            billing.pool, OPERATOR_TENANT, billing.settings.catalog_file, billing.accounts
        )


async def start_applier(billing: Billing) -> None:
    if billing.settings.run_workers:
        applier = WebhookApplier(billing.pool, grace_days=billing.grace_days)
        billing.tasks.append(asyncio.create_task(applier.run()))


async def start_catalog_sync(billing: Billing) -> None:
    # Without a Stripe key the catalog stays `local`: there is nothing to call.
    if billing.settings.run_workers and billing.accounts.platform is not None:
        worker = CatalogSync(
            billing.pool,
            billing.accounts,
            retry_seconds=billing.settings.stripe_sync_retry_seconds,
            lease_seconds=billing.settings.stripe_sync_lease_seconds,
        )
        billing.tasks.append(asyncio.create_task(worker.run()))


async def start_fee_fetcher(billing: Billing) -> None:
    # Also without a Stripe key: it marks what it cannot fetch `unavailable` (fees unknown).
    if billing.settings.run_workers:
        worker = FeeFetcher(
            billing.pool, billing.accounts, release=webhook_service.release_held,
            retry_seconds=billing.settings.stripe_sync_retry_seconds,
        )  # fmt: skip
        billing.tasks.append(asyncio.create_task(worker.run()))


def create_app(
    settings: BillingSettings | None = None, infra: InfraSettings | None = None
) -> FastAPI:
    settings = settings or load_settings(BillingSettings)
    infra = infra or load_settings(InfraSettings)
    check_production(settings, infra)
    billing = Billing.of(settings, infra)
    hsts = infra.env == Environment.PRODUCTION

    def fast_path(whole: ASGIApp) -> WebhookFastPath:
        # The webhooks' common case goes in front of the whole app (webhooks/fast_path.py).
        connect = ConnectFastPath(whole, billing, hsts=hsts)
        return WebhookFastPath(connect, billing, hsts=hsts)

    return create_service_app(
        ServiceSpec(
            context=billing,
            title="Tessera billing",
            version="0.1.0",
            migrations=MIGRATIONS,
            subscribers=register_subscribers,
            routers=(
                webhook_routes.router,
                checkout_routes.router,
                order_routes.router,
                order_routes.seller_router,
                admin_routes.router,
                catalog_routes.router,
                catalog_routes.seller_router,
                connect_routes.router,
                connect_routes.seller_router,
                subscription_routes.router,
                revenue_routes.router,
                platform_plan_routes.router,
            ),
            on_startup=(seed, start_applier, start_catalog_sync, start_fee_fetcher),
            body_limits={
                webhook_routes.PATH: settings.webhook_max_bytes,
                webhook_routes.CONNECT_PATH: settings.webhook_max_bytes,
            },
            fast_path=fast_path,
        )
    )
