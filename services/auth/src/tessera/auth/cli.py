"""`tessera-auth`: serve, migrate, and the operator commands: grant or revoke admin (the only
way to make an admin), disable or enable a user, rotate the token-signing key."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import asyncpg
import typer

from tessera.auth.api_keys import service as api_keys
from tessera.auth.app import MIGRATIONS
from tessera.auth.secrets import sealer_of
from tessera.auth.sellers import service as sellers
from tessera.auth.sessions.store import SessionStore
from tessera.auth.settings import AuthSettings, refuse_dev_secrets
from tessera.auth.signing_keys import ring
from tessera.auth.users import service as users
from tessera.auth.users.errors import UserNotFound
from tessera.auth.users.schemas import Role
from tessera.shared.cli import service_cli
from tessera.shared.db.pool import create_pool
from tessera.shared.redis import Keys, create_redis, key_prefix
from tessera.shared.sellers import HOME_LIVE
from tessera.shared.settings import InfraSettings, load_settings

cli = service_cli("auth", "tessera.auth.app:create_app", AuthSettings, MIGRATIONS)
admins = typer.Typer(help="Grant or revoke the admin role.", no_args_is_help=True)
user_cli = typer.Typer(help="Disable or enable a user.", no_args_is_help=True)
key_cli = typer.Typer(help="Token-signing keys.", no_args_is_help=True)
seller_cli = typer.Typer(help="Suspend or reinstate a seller.", no_args_is_help=True)
cli.add_typer(admins, name="admins")
cli.add_typer(user_cli, name="users")
cli.add_typer(key_cli, name="keys")
cli.add_typer(seller_cli, name="sellers")
api_key_cli = typer.Typer(help="Sellers' API keys.", no_args_is_help=True)
cli.add_typer(api_key_cli, name="api-keys")

T = TypeVar("T")


def run(work: Callable[[AuthSettings, asyncpg.Pool], Awaitable[T]]) -> T:
    settings = load_settings(AuthSettings)
    refuse_dev_secrets(settings, load_settings(InfraSettings))

    async def main() -> T:
        pool = await create_pool(settings.model_copy(update={"db_pool_min": 1, "db_pool_max": 2}))
        try:
            return await work(settings, pool)
        except UserNotFound as error:
            typer.echo(error.detail or "no such user", err=True)
            raise typer.Exit(1) from None
        finally:
            await pool.close()

    return asyncio.run(main())


def set_role(email: str, role: Role) -> None:
    async def work(_: AuthSettings, pool: asyncpg.Pool) -> None:
        user, changed = await users.set_role(pool, email, role)
        typer.echo(f"{user.email}: {user.role}" + ("" if changed else " (unchanged)"))

    run(work)


@admins.command("grant")
def grant(email: str) -> None:
    """Make the user with this address an admin (audited)."""
    set_role(email, "admin")


@admins.command("revoke")
def revoke(email: str) -> None:
    """Make an admin a customer again (audited)."""
    set_role(email, "customer")


@user_cli.command("disable")
def disable(email: str) -> None:
    """Disable the user: their sessions and device sign-ins end at once."""
    infra = load_settings(InfraSettings)

    async def work(_: AuthSettings, pool: asyncpg.Pool) -> None:
        user = await users.get_by_email(pool, HOME_LIVE, email)
        redis = create_redis(str(infra.redis_url))
        try:
            store = SessionStore(redis, Keys(key_prefix("auth", infra.namespace)))
            changed = await users.disable(pool, store, HOME_LIVE, user.id)
        finally:
            await redis.aclose()
        typer.echo(f"{user.email}: disabled" + ("" if changed else " (already)"))

    run(work)


@user_cli.command("enable")
def enable(email: str) -> None:
    """Let a disabled user sign in again."""

    async def work(_: AuthSettings, pool: asyncpg.Pool) -> None:
        user = await users.get_by_email(pool, HOME_LIVE, email)
        changed = await users.enable(pool, HOME_LIVE, user.id)
        typer.echo(f"{user.email}: enabled" + ("" if changed else " (already)"))

    run(work)


@key_cli.command("rotate")
def rotate() -> None:
    """Start signing with a new key. The old public key stays in the JWKS until every token
    it signed has expired."""

    async def work(settings: AuthSettings, pool: asyncpg.Pool) -> None:
        kid = await ring.rotate(pool, sealer_of(settings.key_encryption_key))
        typer.echo(f"active key: {kid}")

    run(work)


def set_seller_status(slug: str, status: Literal["active", "suspended"]) -> None:
    async def work(_: AuthSettings, pool: asyncpg.Pool) -> None:
        try:
            seller = await sellers.set_status(pool, slug, status, actor="operator-cli")
        except ValueError as error:
            typer.echo(str(error), err=True)
            raise typer.Exit(1) from None
        typer.echo(f"{slug}: {status}" + ("" if seller else " (unchanged, or no such seller)"))

    run(work)


@seller_cli.command("suspend")
def suspend(slug: str) -> None:
    """Suspend a seller: every service refuses its customers' tokens within moments."""
    set_seller_status(slug, "suspended")


@seller_cli.command("reinstate")
def reinstate(slug: str) -> None:
    """Make a suspended seller active again."""
    set_seller_status(slug, "active")


@api_key_cli.command("republish")
def republish_api_keys() -> None:
    """Publish every API key's current record again (through the outbox), to rebuild a
    lost APIKEYS stream (docs/operations.md)."""

    async def work(_: AuthSettings, pool: asyncpg.Pool) -> None:
        count = await api_keys.republish_all(pool)
        typer.echo(f"{count} key records queued for publishing")

    run(work)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
