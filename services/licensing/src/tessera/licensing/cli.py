"""`tessera-licensing`: serve, migrate, keys rotate|list, orders held|retry-held."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

import asyncpg
import typer

from tessera.licensing.app import MIGRATIONS
from tessera.licensing.orders import service as orders
from tessera.licensing.settings import LicensingSettings
from tessera.licensing.signing import service as signing
from tessera.licensing.signing.crypto import Sealer
from tessera.shared.cli import service_cli
from tessera.shared.db.pool import create_pool
from tessera.shared.settings import load_settings

T = TypeVar("T")

cli = service_cli("licensing", "tessera.licensing.app:create_app", LicensingSettings, MIGRATIONS)
keys_cli = typer.Typer(help="Lease-signing keys.", no_args_is_help=True)
orders_cli = typer.Typer(help="Orders licensing could not apply.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
cli.add_typer(orders_cli, name="orders")


def with_pool(work: Callable[[asyncpg.Pool, LicensingSettings], Awaitable[T]]) -> T:
    settings = load_settings(LicensingSettings)

    async def run() -> T:
        pool = await create_pool(settings)
        try:
            return await work(pool, settings)
        finally:
            await pool.close()

    return asyncio.run(run())


@keys_cli.command("rotate")
def rotate() -> None:
    """Sign with a new key from now on; the old one stays published until its leases expire."""

    async def work(pool: asyncpg.Pool, settings: LicensingSettings) -> tuple[str, str | None]:
        lag = settings.signing_key_refresh_seconds
        return await signing.rotate(pool, Sealer(settings.kek), lag)

    new, old = with_pool(work)
    typer.echo(f"signing with {new}" + (f"; retired {old}" if old else ""))


@keys_cli.command("list")
def list_keys() -> None:
    """Every key: current, retired and published until, or expired."""

    async def work(pool: asyncpg.Pool, _: LicensingSettings) -> list[asyncpg.Record]:
        return await signing.list_keys(pool)

    for row in with_pool(work):
        if row["retired_at"] is None:
            state = "current"
        else:
            state = f"retired {row['retired_at']:%Y-%m-%d %H:%M}, published until {row['publish_until']:%Y-%m-%d %H:%M}"
        typer.echo(f"{row['kid']}  created {row['created_at']:%Y-%m-%d %H:%M}  {state}")


@orders_cli.command("retry-held")
def retry_held() -> None:
    """Re-apply paid orders held for an unknown product or policy (after adding it)."""

    async def work(pool: asyncpg.Pool, settings: LicensingSettings) -> dict[UUID, int]:
        return await orders.retry_held(pool, Sealer(settings.kek))

    results = with_pool(work)
    for order_id, count in results.items():
        typer.echo(f"{order_id}: {'issued ' + str(count) if count else 'still held'}")
    if not results:
        typer.echo("no held orders")


def main() -> None:
    cli()
