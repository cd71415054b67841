"""Plain SQL migrations applied by yoyo, under yoyo's lock, so concurrent starts are safe.

Each service's migrations are the kernel's (outbox, inbox) followed by its own folder.
"""

from __future__ import annotations

import asyncio
from importlib.resources import files
from pathlib import Path

from yoyo import get_backend, read_migrations

KERNEL_MIGRATIONS = Path(str(files("tessera.shared.db") / "migrations"))


def yoyo_url(database_url: str) -> str:
    _, _, rest = database_url.partition("://")
    return f"postgresql+psycopg://{rest}"


def pending_migrations(database_url: str, service_migrations: Path) -> list[str]:
    backend = get_backend(yoyo_url(database_url))
    try:
        migrations = read_migrations(str(KERNEL_MIGRATIONS), str(service_migrations))
        return [m.id for m in backend.to_apply(migrations)]
    finally:
        backend.connection.close()


def apply_migrations(database_url: str, service_migrations: Path) -> list[str]:
    """Apply what is pending; returns the ids applied. Safe to run from many processes."""
    backend = get_backend(yoyo_url(database_url))
    try:
        migrations = read_migrations(str(KERNEL_MIGRATIONS), str(service_migrations))
        with backend.lock(timeout=60):
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
            return [m.id for m in pending]
    finally:
        backend.connection.close()


async def apply_migrations_async(database_url: str, service_migrations: Path) -> list[str]:
    return await asyncio.to_thread(apply_migrations, database_url, service_migrations)
