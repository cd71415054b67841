"""`tessera-billing`: serve, migrate, and the operator's commands (seed an account, replay
a Stripe event, sync the catalog, decide orders held for review). Changes go through the same service functions as the
API, so they write the same events to the outbox, which the running service publishes.
The operator's commands act on the home seller's live data, as the admin routes do."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from uuid import UUID

import asyncpg
import typer

from tessera.billing.admin.schemas import SeedAccount
from tessera.billing.admin.service import replay_event, review_held, seed_account
from tessera.billing.app import MIGRATIONS
from tessera.billing.catalog.service import seed_catalog
from tessera.billing.context import OPERATOR_TENANT
from tessera.billing.orders import queries as order_queries
from tessera.billing.settings import BillingSettings
from tessera.billing.stripe.accounts import OFFLINE
from tessera.billing.stripe.gateway import StripeGateway
from tessera.shared.cli import service_cli
from tessera.shared.db.pool import create_pool
from tessera.shared.http.problems import Problem
from tessera.shared.settings import load_settings

cli = service_cli("billing", "tessera.billing.app:create_app", BillingSettings, MIGRATIONS)
accounts = typer.Typer(help="Accounts.", no_args_is_help=True)
events = typer.Typer(help="Stripe webhook events.", no_args_is_help=True)
catalog = typer.Typer(help="The product catalog.", no_args_is_help=True)
cli.add_typer(accounts, name="accounts")
cli.add_typer(events, name="events")
cli.add_typer(catalog, name="catalog")
held = typer.Typer(help="Orders held for review (a checkout not matching the catalog).")
cli.add_typer(held, name="held-orders")

T = TypeVar("T")
OPERATOR = "operator:cli"


def with_pool(work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    async def run() -> T:
        pool = await create_pool(load_settings(BillingSettings))
        try:
            return await work(pool)
        finally:
            await pool.close()

    try:
        return asyncio.run(run())
    except Problem as problem:
        typer.echo(f"error: {problem.detail or problem.title}", err=True)
        raise typer.Exit(1) from None


@accounts.command("seed")
def seed(
    email: str,
    sku: str | None = typer.Option(None, help="Also grant this SKU (a complimentary order)."),
    quantity: int = typer.Option(1, min=1, max=100),
    note: str = typer.Option(..., help="Why (kept in the audit log); required."),
) -> None:
    """Create an account for EMAIL (closed signup: the operator's way in)."""
    body = SeedAccount(email=email, sku=sku, quantity=quantity, note=note)
    result = with_pool(lambda pool: seed_account(pool, OPERATOR_TENANT, body, OPERATOR, None))
    typer.echo(
        f"account {result.account_id}" + (f", order {result.order_id}" if result.order_id else "")
    )


@events.command("replay")
def replay(event_id: str) -> None:
    """Apply a recorded Stripe event again (idempotent)."""
    mode = load_settings(BillingSettings).platform_mode
    outcome = with_pool(
        lambda pool: replay_event(pool, OPERATOR_TENANT, event_id, OPERATOR, None, mode)
    )
    typer.echo(f"{event_id}: {outcome.status} ({outcome.detail})")


@catalog.command("sync")
def sync(
    path: Path | None = typer.Argument(None, help="Catalog file (default: settings)."),
) -> None:
    """Upsert the catalog from its seed file."""
    settings = load_settings(BillingSettings)
    # The same accounts as the running service: what changes is queued for its Stripe sync.
    accounts = OFFLINE if settings.test_checkout else StripeGateway(settings).accounts()
    count = with_pool(
        lambda pool: seed_catalog(pool, OPERATOR_TENANT, path or settings.catalog_file, accounts)
    )
    typer.echo(f"{count} products")


@held.command("list")
def list_held() -> None:
    """Orders waiting for a decision: id, email, amount and why each was held."""

    async def work(pool: asyncpg.Pool) -> list[order_queries.Order]:
        async with pool.acquire() as conn:
            return await order_queries.list_held(conn, OPERATOR_TENANT, "held", 500, 0)

    for order in with_pool(work):
        typer.echo(
            f"{order.id}  {order.email}  {order.sku} x {order.quantity}  "
            f"{order.amount_total} {order.currency}  {order.hold_reason}"
        )


@held.command("approve")
def approve(
    order_id: UUID, reason: str = typer.Option(..., help="Why (kept in the audit log).")
) -> None:
    """Approve a held order: provisioned through the normal path, once."""
    result = with_pool(
        lambda pool: review_held(pool, OPERATOR_TENANT, order_id, "approve", reason, OPERATOR, None)
    )
    typer.echo(f"{result.id}: {result.status}")


@held.command("reject")
def reject(
    order_id: UUID, reason: str = typer.Option(..., help="Why (kept in the audit log).")
) -> None:
    """Reject a held order: recorded, never provisioned."""
    result = with_pool(
        lambda pool: review_held(pool, OPERATOR_TENANT, order_id, "reject", reason, OPERATOR, None)
    )
    typer.echo(f"{result.id}: {result.status}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
