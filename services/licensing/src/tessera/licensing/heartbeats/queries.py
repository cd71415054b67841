"""Heartbeat SQL: the batched flush and the sweep of lapsed machines and seats."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

# Floating seats are renewed synchronously under the license's lock (desktop/service.py),
# never here: a batch landing late could otherwise renew a seat that lapsed meanwhile.
FLUSH = """
UPDATE activations a
   SET last_heartbeat_at = greatest(a.last_heartbeat_at, v.at)
  FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, at)
 WHERE a.id = v.id
"""


async def flush(
    conn: asyncpg.Connection | asyncpg.Pool, ids: list[UUID], at: list[datetime]
) -> None:
    await conn.execute(FLUSH, ids, at)


# Every machine of a non-floating heartbeat policy silent past its interval, its grace and
# the flush delay ($2 seconds: a heartbeat answered may not be written yet). The license row
# is locked too (SKIP LOCKED, so replicas sweeping at once take each machine once and never
# wait): an activate holding it may be answering VALID for this very activation. Across
# every tenant: each machine's event and audit entry are its own tenant's.
SWEEP = """
WITH lapsed AS (
    SELECT a.id
      FROM activations a
      JOIN licenses l ON l.id = a.license_id
      JOIN policies pol
        ON pol.seller_id = l.seller_id AND pol.mode = l.mode AND pol.code = l.policy_code
     WHERE a.heartbeat_swept
       AND pol.heartbeat_seconds IS NOT NULL AND NOT pol.floating
       AND a.last_heartbeat_at
           + make_interval(secs => pol.heartbeat_seconds + pol.heartbeat_grace_seconds + $2::float8)
           < clock_timestamp()
     ORDER BY a.last_heartbeat_at
     LIMIT $1
       FOR UPDATE OF a, l SKIP LOCKED
)
DELETE FROM activations a
 USING lapsed, licenses l
 WHERE a.id = lapsed.id AND l.id = a.license_id
RETURNING a.id, a.license_id, a.fingerprint_hash, a.machine_name, a.last_heartbeat_at,
          l.account_id, a.seller_id, a.mode
"""


async def delete_lapsed(
    conn: asyncpg.Connection, limit: int, allowance: float
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SWEEP, limit, allowance))


# Floating seats that lapsed, given back for good (a lapsed seat is free already: nothing
# counts it; this only stops it showing). Locked in id order, SKIP LOCKED across replicas.
FREE_SEATS = """
WITH lapsed AS (
    SELECT id FROM activations
     WHERE seat_until IS NOT NULL AND seat_until <= clock_timestamp()
     ORDER BY id
     LIMIT $1
       FOR UPDATE SKIP LOCKED
)
UPDATE activations a SET seat_until = NULL
  FROM lapsed WHERE a.id = lapsed.id AND a.seat_until <= clock_timestamp()
RETURNING a.id, a.license_id
"""


async def free_lapsed_seats(
    conn: asyncpg.Connection | asyncpg.Pool, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(FREE_SEATS, limit))
