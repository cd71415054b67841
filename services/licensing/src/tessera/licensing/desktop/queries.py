"""Desktop SQL. `lookup` is the hot path: one indexed read by key hash that brings the
license, its policy, its product, this machine's activation and the seat count at once.

A key finds its license alone (the key hash is unique across every tenant); the license row
names its tenant, and everything read or written with it is that tenant's."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from tessera.licensing.cache import Known, License
from tessera.shared.sellers import Tenant

POLICY_COLUMNS = """
    l.seller_id, l.mode, pol.max_machines, pol.lease_seconds, pol.grace_seconds, p.entitlements,
    pol.heartbeat_seconds, pol.heartbeat_grace_seconds, pol.floating
"""

LOOKUP = f"""
SELECT l.id, l.account_id, l.product_code, l.status, l.expires_at, {POLICY_COLUMNS},
       coalesce(array_agg(a.fingerprint_hash) FILTER (WHERE a.id IS NOT NULL), '{{}}') AS fps,
       coalesce(array_agg(a.id) FILTER (WHERE a.id IS NOT NULL), '{{}}') AS activation_ids,
       coalesce(array_agg(extract(epoch FROM a.seat_until))
                FILTER (WHERE a.seat_until IS NOT NULL), '{{}}') AS seat_ends,
       coalesce(array_agg(a.fingerprint_hash)
                FILTER (WHERE a.seat_until IS NOT NULL), '{{}}') AS seat_fps
  FROM licenses l
  JOIN policies pol
    ON pol.seller_id = l.seller_id AND pol.mode = l.mode AND pol.code = l.policy_code
  JOIN products p
    ON p.seller_id = l.seller_id AND p.mode = l.mode AND p.code = l.product_code
  LEFT JOIN activations a
    ON a.seller_id = l.seller_id AND a.mode = l.mode AND a.license_id = l.id
 WHERE l.key_hash = $1
 GROUP BY l.id, pol.seller_id, pol.mode, pol.code, p.seller_id, p.mode, p.code
"""  # noqa: S608 (a constant column list, no input)


async def lookup(conn: asyncpg.Connection | asyncpg.Pool, key_hash: bytes) -> Known | None:
    """The license a key hash names, with every activation (at most the policy's machines)."""
    row = await conn.fetchrow(LOOKUP, key_hash)
    if row is None:
        return None
    return Known.of(
        row,
        activations=dict(zip(row["fps"], row["activation_ids"], strict=True)),
        seats={fp: float(end) for fp, end in zip(row["seat_fps"], row["seat_ends"], strict=True)},
    )


@dataclass(frozen=True, slots=True)
class Locked:
    """A license row locked for a write: the read model, and its sealed key."""

    license: License
    key_sealed: bytes

    @classmethod
    def of(cls, row: asyncpg.Record) -> Locked:
        return cls(License.of(row), bytes(row["key_sealed"]))


LOCK_COLUMNS = f"""
    l.id, l.account_id, l.product_code, l.status, l.expires_at, l.key_sealed, {POLICY_COLUMNS}
"""
# A license with its policy and product (the tenant's own).
LICENSE_CATALOG = """
  FROM licenses l
  JOIN policies pol
    ON pol.seller_id = l.seller_id AND pol.mode = l.mode AND pol.code = l.policy_code
  JOIN products p
    ON p.seller_id = l.seller_id AND p.mode = l.mode AND p.code = l.product_code
"""


async def lock_by_key(conn: asyncpg.Connection, key_hash: bytes) -> Locked | None:
    # The row lock serialises activations of one license: the seat count read below cannot
    # change under us, so N parallel activations against K seats succeed exactly K times.
    row = await conn.fetchrow(
        f"""
        SELECT {LOCK_COLUMNS} {LICENSE_CATALOG}
         WHERE l.key_hash = $1
           FOR UPDATE OF l
        """,
        key_hash,
    )
    return Locked.of(row) if row is not None else None


async def lock_of_account(
    conn: asyncpg.Connection, tenant: Tenant, account_id: UUID, product: str | None
) -> list[Locked]:
    return [
        Locked.of(row)
        for row in await conn.fetch(
            f"""
            SELECT {LOCK_COLUMNS} {LICENSE_CATALOG}
             WHERE l.seller_id = $3 AND l.mode = $4 AND l.account_id = $1
               AND ($2::text IS NULL OR l.product_code = $2)
             ORDER BY l.created_at, l.seat
               FOR UPDATE OF l
            """,
            account_id,
            product,
            tenant.seller_id,
            tenant.mode,
        )
    ]


async def find_activation(
    conn: asyncpg.Connection, tenant: Tenant, license_id: UUID, fingerprint_hash: str
) -> UUID | None:
    value: UUID | None = await conn.fetchval(
        "SELECT id FROM activations"
        " WHERE license_id = $1 AND fingerprint_hash = $2 AND seller_id = $3 AND mode = $4",
        license_id,
        fingerprint_hash,
        tenant.seller_id,
        tenant.mode,
    )
    return value


async def count_activations(conn: asyncpg.Connection, tenant: Tenant, license_id: UUID) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM activations WHERE license_id = $1 AND seller_id = $2 AND mode = $3",
            license_id,
            tenant.seller_id,
            tenant.mode,
        )
    )


async def insert_activation(
    conn: asyncpg.Connection,
    tenant: Tenant,
    *,
    activation_id: UUID,
    license_id: UUID,
    fingerprint_hash: str,
    machine_name: str | None,
    platform: str | None,
    app_version: str | None,
) -> None:
    await conn.execute(
        """
        INSERT INTO activations (id, license_id, fingerprint_hash, machine_name, platform,
                                 app_version, seller_id, mode)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        """,
        activation_id,
        license_id,
        fingerprint_hash,
        machine_name,
        platform,
        app_version,
        tenant.seller_id,
        tenant.mode,
    )


async def delete_activation(
    conn: asyncpg.Connection, tenant: Tenant, license_id: UUID, fingerprint_hash: str
) -> UUID | None:
    value: UUID | None = await conn.fetchval(
        "DELETE FROM activations"
        " WHERE license_id = $1 AND fingerprint_hash = $2 AND seller_id = $3 AND mode = $4"
        " RETURNING id",
        license_id,
        fingerprint_hash,
        tenant.seller_id,
        tenant.mode,
    )
    return value


async def take_seat(
    conn: asyncpg.Connection, license_id: UUID, activation_id: UUID, seats: int, seconds: int
) -> float | None:
    """Give the machine a floating seat for `seconds` (renew the one it holds) if it holds
    one or fewer than `seats` are held; the seat's end (unix seconds), or None when none is
    free. The caller holds the license's row lock, so the count cannot change under it."""
    value = await conn.fetchval(
        """
        UPDATE activations
           SET seat_until = clock_timestamp() + make_interval(secs => $4),
               last_heartbeat_at = clock_timestamp()
         WHERE id = $2
           AND (seat_until > clock_timestamp()
                OR (SELECT count(*) FROM activations
                     WHERE license_id = $1 AND seat_until > clock_timestamp()) < $3)
        RETURNING extract(epoch FROM seat_until)
        """,
        license_id,
        activation_id,
        seats,
        seconds,
    )
    return None if value is None else float(value)


async def release_seat(
    conn: asyncpg.Connection, license_id: UUID, fingerprint_hash: str
) -> UUID | None:
    """The machine's activation, its floating seat (if any) given back; None if not activated."""
    value: UUID | None = await conn.fetchval(
        "UPDATE activations SET seat_until = NULL"
        " WHERE license_id = $1 AND fingerprint_hash = $2 RETURNING id",
        license_id,
        fingerprint_hash,
    )
    return value
