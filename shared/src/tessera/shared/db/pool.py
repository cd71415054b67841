"""asyncpg pools and database creation."""

from __future__ import annotations

import asyncpg

from tessera.shared.settings import DatabaseSettings


def asyncpg_dsn(url: str) -> str:
    """asyncpg accepts only the `postgresql://` / `postgres://` schemes."""
    for scheme in ("postgresql+asyncpg://", "postgresql+psycopg://"):
        if url.startswith(scheme):
            return "postgresql://" + url[len(scheme) :]
    return url


async def roll_back_if_open(conn: asyncpg.Connection) -> None:
    """What releasing a connection must undo, and no more. asyncpg's default reset is a
    round trip on every release (unlock advisory locks, close cursors, UNLISTEN, RESET ALL)
    for session state this code never leaves behind: its advisory locks are
    transaction-scoped, it sets no session settings and holds no cursors, and its LISTEN
    connections UNLISTEN before they go back. An interrupted transaction is rolled back."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(settings: DatabaseSettings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        asyncpg_dsn(str(settings.database_url)),
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        command_timeout=10,
        # The pool must survive a Postgres restart: broken connections are replaced.
        max_inactive_connection_lifetime=60,
        reset=roll_back_if_open,
    )
    assert isinstance(pool, asyncpg.Pool)
    return pool


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    base, _, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    host_part = rest.split("/", 1)[0]
    return f"{scheme}://{host_part}/{database}" + (f"?{query}" if query else "")


async def ensure_database(server_url: str, database: str) -> bool:
    """Create `database` on the server if it is missing. Returns True when created."""
    conn = await asyncpg.connect(asyncpg_dsn(with_database(server_url, "postgres")))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if exists:
            return False
        # Identifiers cannot be parameters; quote_ident makes the name safe.
        quoted = await conn.fetchval("SELECT quote_ident($1)", database)
        try:
            await conn.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await conn.close()


async def drop_database(server_url: str, database: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(with_database(server_url, "postgres")))
    try:
        quoted = await conn.fetchval("SELECT quote_ident($1)", database)
        await conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await conn.close()
