"""`tessera-licensing`: serve, migrate, keys rotate|list|root-create|root-retire|sign-set|pins,
orders retry-held."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar
from uuid import UUID

import asyncpg
import typer

from tessera.licensing.app import MIGRATIONS
from tessera.licensing.context import OPERATOR_TENANT
from tessera.licensing.orders import service as orders
from tessera.licensing.settings import LicensingSettings
from tessera.licensing.signing import service as signing
from tessera.shared.cli import service_cli
from tessera.shared.db.pool import create_pool
from tessera.shared.keys import (
    Sealer,
    Signer,
    b64url,
    b64url_decode,
    public_jwk,
    signer_of,
)
from tessera.shared.settings import load_settings

T = TypeVar("T")

cli = service_cli("licensing", "tessera.licensing.app:create_app", LicensingSettings, MIGRATIONS)
keys_cli = typer.Typer(
    help="Root keys, the signed key set, lease-signing keys.", no_args_is_help=True
)
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


RootKeyFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--root-key",
        help="A root's private key file (from `keys root-create --out`); repeat to co-sign.",
    ),
]


def read_roots(files: list[Path] | None) -> tuple[Signer, ...]:
    """Root key files: the base64url Ed25519 seed on one line."""
    roots = []
    for path in files or []:
        seed = b64url_decode(path.read_text(encoding="ascii").strip())
        if len(seed) != 32:
            raise typer.BadParameter(f"{path}: not a root key file (32-byte base64url seed)")
        roots.append(signer_of(seed))
    return tuple(roots)


def refuse(error: signing.NoRootError) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(1)


@keys_cli.command("rotate")
def rotate(root_key: RootKeyFiles = None) -> None:
    """Sign with a new key from now on; the old one stays published until its leases expire.
    The new key set is signed at once (sealed roots, plus any --root-key)."""
    roots = read_roots(root_key)

    async def work(pool: asyncpg.Pool, settings: LicensingSettings) -> tuple[str, str | None, int]:
        lag = settings.signing_key_refresh_seconds
        lifetime = settings.key_set_lifetime_seconds
        return await signing.rotate(pool, Sealer(settings.kek), lag, lifetime, roots)

    try:
        new, old, version = with_pool(work)
    except signing.NoRootError as error:
        refuse(error)
        return
    typer.echo(
        f"signing with {new}" + (f"; retired {old}" if old else "") + f"; key set v{version}"
    )


@keys_cli.command("root-create")
def root_create(
    out: Annotated[
        Path | None,
        typer.Option(
            help="Offline root: write the private key here (mode 0600) and keep only the "
            "public half in the database. Without it the root is sealed in the database."
        ),
    ] = None,
) -> None:
    """Make a root key. Prints the public key an app pins."""
    if out is not None and out.exists():
        typer.echo(f"error: {out} exists; not overwriting a root key", err=True)
        raise typer.Exit(1)

    async def work(pool: asyncpg.Pool, settings: LicensingSettings) -> Signer:
        return await signing.create_root(pool, Sealer(settings.kek), sealed=out is None)

    root = with_pool(work)
    if out is not None:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(b64url(root.seed) + "\n")
    where = f"private key in {out} (keep it offline)" if out else "sealed in the database"
    typer.echo(f"root {root.kid}: {where}")
    typer.echo(f"pin: {b64url(root.public_key)}")


@keys_cli.command("root-retire")
def root_retire(kid: str) -> None:
    """The root signs no further key set (apps should stop pinning it in their next build)."""

    async def work(pool: asyncpg.Pool, _: LicensingSettings) -> bool:
        return await signing.retire_root(pool, kid)

    if not with_pool(work):
        typer.echo(f"error: no active root {kid}", err=True)
        raise typer.Exit(1)
    typer.echo(f"retired root {kid}")


@keys_cli.command("sign-set")
def sign_set(
    root_key: RootKeyFiles = None,
    days: Annotated[
        float | None, typer.Option(help="Lifetime (default KEY_SET_LIFETIME_SECONDS).")
    ] = None,
    at_least: Annotated[
        int,
        typer.Option(
            "--at-least",
            help="Lowest version to sign (after restoring a backup: above any apps have seen).",
        ),
    ] = 0,
) -> None:
    """Sign a new key set (next version) of the published lease keys, with every sealed root
    and every --root-key."""
    roots = read_roots(root_key)

    async def work(pool: asyncpg.Pool, settings: LicensingSettings) -> int:
        lifetime = days * 86400 if days is not None else settings.key_set_lifetime_seconds
        return await signing.sign_set_now(pool, Sealer(settings.kek), lifetime, roots, at_least)

    try:
        version = with_pool(work)
    except signing.NoRootError as error:
        refuse(error)
        return
    typer.echo(f"key set v{version} signed")


async def all_keys(
    pool: asyncpg.Pool, _: LicensingSettings
) -> tuple[list[asyncpg.Record], list[asyncpg.Record], list[asyncpg.Record]]:
    """Lease keys, roots and key sets, for `keys pins` and `keys list`."""
    return await signing.list_keys(pool)


@keys_cli.command("pins")
def pins() -> None:
    """The public keys of the roots not retired: what an app pins at build time."""

    _, roots, _ = with_pool(all_keys)
    for row in roots:
        if row["retired_at"] is None:
            jwk = public_jwk(str(row["kid"]), bytes(row["public_key"]))
            typer.echo(f"{jwk['x']}  kid={jwk['kid']}")


@keys_cli.command("list")
def list_keys() -> None:
    """Every key: roots, the latest key set, lease keys (current, retired and published until)."""

    keys, roots, sets = with_pool(all_keys)
    for root in roots:
        where = "sealed" if root["sealed"] else "offline"
        state = (
            "active"
            if root["retired_at"] is None
            else f"retired {root['retired_at']:%Y-%m-%d %H:%M}"
        )
        typer.echo(
            f"root {root['kid']}  {where}  created {root['created_at']:%Y-%m-%d %H:%M}  {state}"
        )
    if sets:
        signed_by = ", ".join(str(s["root_kid"]) for s in sets)
        typer.echo(
            f"key set v{sets[0]['version']}  expires {sets[0]['expires_at']:%Y-%m-%d %H:%M}"
            f"  signed by {signed_by}"
        )
    else:
        typer.echo("no signed key set: run `tessera-licensing keys sign-set`")
    for row in keys:
        if row["retired_at"] is None:
            state = "current"
        else:
            state = f"retired {row['retired_at']:%Y-%m-%d %H:%M}, published until {row['publish_until']:%Y-%m-%d %H:%M}"
        typer.echo(f"{row['kid']}  created {row['created_at']:%Y-%m-%d %H:%M}  {state}")


@orders_cli.command("retry-held")
def retry_held() -> None:
    """Re-apply the home seller's paid orders held for an unknown product or policy (after
    adding it)."""

    async def work(pool: asyncpg.Pool, settings: LicensingSettings) -> dict[UUID, int]:
        return await orders.retry_held(pool, OPERATOR_TENANT, Sealer(settings.kek))

    results = with_pool(work)
    for order_id, count in results.items():
        typer.echo(f"{order_id}: {'issued ' + str(count) if count else 'still held'}")
    if not results:
        typer.echo("no held orders")


def main() -> None:
    cli()
