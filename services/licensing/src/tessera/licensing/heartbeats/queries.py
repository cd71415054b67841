"""Heartbeat SQL: the batched flush and the sweep of lapsed machines."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

# A seat is renewed only while it is still held when the batch lands: a seat that lapsed
# meanwhile may have gone to another machine (counted under the license's lock at its
# check-out), and renewing it then would hold one seat more than the policy allows.
FLUSH = """
UPDATE activations a
   SET last_heartbeat_at = greatest(a.last_heartbeat_at, v.at),
       seat_until = CASE WHEN a.seat_until > clock_timestamp()
                         THEN greatest(a.seat_until, v.seat_until)
                         ELSE a.seat_until END
  FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS v(id, at, seat_until)
 WHERE a.id = v.id
"""


async def flush(
    conn: asyncpg.Connection | asyncpg.Pool,
    ids: list[UUID],
    at: list[datetime],
    seat_until: list[datetime | None],
) -> None:
    await conn.execute(FLUSH, ids, at, seat_until)


# Every machine of a heartbeat policy silent past its interval and grace, locked so that
# replicas sweeping at once each take a machine once (SKIP LOCKED), and deleted. Across
# every tenant: each machine's event and audit entry are its own tenant's.
SWEEP = """
WITH lapsed AS (
    SELECT a.id
      FROM activations a
      JOIN licenses l ON l.id = a.license_id
      JOIN policies pol
        ON pol.seller_id = l.seller_id AND pol.mode = l.mode AND pol.code = l.policy_code
     WHERE pol.heartbeat_seconds IS NOT NULL
       AND a.last_heartbeat_at
           + make_interval(secs => pol.heartbeat_seconds + pol.heartbeat_grace_seconds)
           < clock_timestamp()
     ORDER BY a.last_heartbeat_at
     LIMIT $1
       FOR UPDATE OF a SKIP LOCKED
)
DELETE FROM activations a
 USING lapsed, licenses l
 WHERE a.id = lapsed.id AND l.id = a.license_id
RETURNING a.id, a.license_id, a.fingerprint_hash, a.machine_name, a.last_heartbeat_at,
          l.account_id, a.seller_id, a.mode
"""


async def delete_lapsed(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(SWEEP, limit))
