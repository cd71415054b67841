"""SQL of `events`, `deliveries` (the queue) and `attempts` (the delivery log)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from tessera.shared.sellers import Tenant

# A row queued afresh: due now, its attempts counted from zero, any lease dropped.
REQUEUE = """status = 'pending', attempts = 0, next_attempt_at = clock_timestamp(),
    locked_until = NULL, claim = NULL"""


async def insert_event(
    conn: asyncpg.Connection,
    tenant: Tenant,
    event_id: UUID,
    event_type: str,
    body: str,
    occurred_at: datetime,
) -> bool:
    """Keep a public event; False if it is already kept (its deliveries were queued then)."""
    inserted = await conn.fetchval(
        """
        INSERT INTO events (id, seller_id, mode, type, body, occurred_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (id) DO NOTHING
        RETURNING true
        """,
        event_id, tenant.seller_id, tenant.mode, event_type, body, occurred_at,
    )  # fmt: skip
    return bool(inserted)


async def fan_out(conn: asyncpg.Connection, tenant: Tenant, event_id: UUID, event_type: str) -> int:
    """One queued delivery per enabled endpoint of the tenant that wants the type."""
    status: str = await conn.execute(
        """
        INSERT INTO deliveries (endpoint_id, event_id)
        SELECT id, $1 FROM endpoints
        WHERE seller_id = $2 AND mode = $3 AND enabled
          AND (event_types IS NULL OR $4 = ANY (event_types))
        ON CONFLICT (endpoint_id, event_id) DO NOTHING
        """,
        event_id,
        tenant.seller_id,
        tenant.mode,
        event_type,
    )
    return int(status.rsplit(" ", 1)[-1])


async def notify_due(conn: asyncpg.Connection) -> None:
    """Wake every replica's worker at commit (as the deliveries' insert trigger does)."""
    await conn.execute("SELECT pg_notify('webhooks_deliveries', '')")


async def queue_one(conn: asyncpg.Connection, endpoint_id: UUID, event_id: UUID) -> bool:
    """Queue (or queue again) one event for one endpoint; False if the event is gone (the
    retention sweep took it). The event is held (`FOR KEY SHARE`) until commit, so the sweep,
    which locks an event before deleting it, never deletes one a replay is queueing."""
    status: str = await conn.execute(
        f"""
        INSERT INTO deliveries (endpoint_id, event_id)
        SELECT $1, id FROM events WHERE id = $2 FOR KEY SHARE
        ON CONFLICT (endpoint_id, event_id) DO UPDATE SET {REQUEUE}
        """,  # noqa: S608 - constant SQL; values are parameters
        endpoint_id,
        event_id,
    )
    return status.rsplit(" ", 1)[-1] != "0"


async def tenant_has_event(conn: asyncpg.Connection, tenant: Tenant, event_id: UUID) -> bool:
    found = await conn.fetchval(
        "SELECT true FROM events WHERE id = $1 AND seller_id = $2 AND mode = $3",
        event_id,
        tenant.seller_id,
        tenant.mode,
    )
    return bool(found)


async def queue_since(conn: asyncpg.Connection, endpoint_id: UUID, since: datetime) -> int:
    """Queue again every event of the endpoint's tenant since `since` that it wants."""
    status: str = await conn.execute(
        f"""
        INSERT INTO deliveries (endpoint_id, event_id)
        SELECT e.id, ev.id
        FROM endpoints e
        JOIN events ev ON ev.seller_id = e.seller_id AND ev.mode = e.mode
        WHERE e.id = $1 AND ev.occurred_at >= $2 AND ev.type <> 'webhook.test'
          AND (e.event_types IS NULL OR ev.type = ANY (e.event_types))
        FOR KEY SHARE OF ev
        ON CONFLICT (endpoint_id, event_id) DO UPDATE SET {REQUEUE}
        """,  # noqa: S608 - constant SQL; values are parameters
        endpoint_id,
        since,
    )
    return int(status.rsplit(" ", 1)[-1])


async def claim_due(
    conn: asyncpg.Connection,
    limit: int,
    per_endpoint: int,
    in_flight: dict[UUID, int],
    lease_seconds: float,
) -> list[asyncpg.Record]:
    """Lease up to `limit` due deliveries of enabled endpoints, at most `per_endpoint` in
    flight per endpoint counting those this process already has (`in_flight`): a slow
    endpoint's backlog never takes the slots the others need."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        WITH busy AS (
            SELECT * FROM unnest($3::uuid[], $4::int[]) AS b (endpoint_id, n)
        ), candidates AS (
            SELECT d.id, d.endpoint_id, d.next_attempt_at,
                   row_number() OVER (PARTITION BY d.endpoint_id
                                      ORDER BY d.next_attempt_at, d.id) AS rank
            FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
            WHERE d.status = 'pending' AND d.next_attempt_at <= clock_timestamp()
              AND (d.locked_until IS NULL OR d.locked_until < clock_timestamp())
              AND e.enabled
        ), picked AS (
            -- The due conditions again, on the row being locked: `candidates` read an older
            -- snapshot, and a row another replica leased and committed meanwhile is locked
            -- here after it commits; only conditions at this level are re-checked on the
            -- row's new version (READ COMMITTED's recheck), so without them it is taken twice.
            SELECT d.id FROM deliveries d
            JOIN candidates c ON c.id = d.id
            LEFT JOIN busy ON busy.endpoint_id = c.endpoint_id
            WHERE c.rank <= $2 - coalesce(busy.n, 0)
              AND d.status = 'pending' AND d.next_attempt_at <= clock_timestamp()
              AND (d.locked_until IS NULL OR d.locked_until < clock_timestamp())
            ORDER BY c.next_attempt_at, c.id
            LIMIT $1
            FOR UPDATE OF d SKIP LOCKED
        )
        UPDATE deliveries d
        SET locked_until = clock_timestamp() + make_interval(secs => $5), claim = gen_random_uuid()
        FROM picked, events ev, endpoints e
        WHERE d.id = picked.id AND ev.id = d.event_id AND e.id = d.endpoint_id
        RETURNING d.id, d.claim, d.attempts, d.endpoint_id, d.event_id, ev.body, e.url,
                  e.secret_sealed,
                  CASE WHEN e.previous_secret_until > clock_timestamp()
                       THEN e.previous_secret_sealed END AS previous_secret_sealed
        """,
        limit,
        per_endpoint,
        list(in_flight),
        list(in_flight.values()),
        lease_seconds,
    )
    return rows


async def log_attempt(
    conn: asyncpg.Connection,
    delivery_id: int,
    endpoint_id: UUID,
    event_id: UUID,
    attempt: int,
    status_code: int | None,
    latency_ms: int,
    excerpt: str,
    error: str | None,
) -> None:
    await conn.execute(
        """
        INSERT INTO attempts (delivery_id, endpoint_id, event_id, attempt, status_code,
                              latency_ms, response_excerpt, error)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        """,
        delivery_id, endpoint_id, event_id, attempt, status_code, latency_ms, excerpt, error,
    )  # fmt: skip


async def mark_delivered(conn: asyncpg.Connection, delivery_id: int, claim: UUID) -> bool:
    done = await conn.fetchval(
        """
        UPDATE deliveries
        SET status = 'delivered', attempts = attempts + 1, locked_until = NULL, claim = NULL
        WHERE id = $1 AND claim = $2
        RETURNING true
        """,
        delivery_id,
        claim,
    )
    return bool(done)


async def mark_failed_attempt(
    conn: asyncpg.Connection, delivery_id: int, claim: UUID, retry_in: float | None
) -> bool:
    """Count a failed attempt: due again in `retry_in` seconds, or given up (None)."""
    done = await conn.fetchval(
        """
        UPDATE deliveries
        SET attempts = attempts + 1, locked_until = NULL, claim = NULL,
            status = CASE WHEN $3::float8 IS NULL THEN 'failed' ELSE 'pending' END,
            next_attempt_at = CASE WHEN $3::float8 IS NULL THEN next_attempt_at
                                   ELSE clock_timestamp() + make_interval(secs => $3) END
        WHERE id = $1 AND claim = $2
        RETURNING true
        """,
        delivery_id,
        claim,
        retry_in,
    )
    return bool(done)


async def endpoint_succeeded(conn: asyncpg.Connection, endpoint_id: UUID) -> None:
    await conn.execute(
        "UPDATE endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
        endpoint_id,
    )


async def endpoint_failed(
    conn: asyncpg.Connection, endpoint_id: UUID, disable_after_seconds: float
) -> asyncpg.Record | None:
    """Note that the endpoint is failing; disable it once it has failed for longer than
    `disable_after_seconds` with no success. The endpoint's row (tenant, url, description,
    failing_since) if this disabled it, else None."""
    # `was` is the row before this update (locked first): only the attempt that turns the
    # endpoint off reports it, not one finishing after, so the seller hears of it once.
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        UPDATE endpoints e
        SET failing_since = coalesce(e.failing_since, clock_timestamp()),
            enabled = CASE WHEN e.failing_since < clock_timestamp() - make_interval(secs => $2)
                           THEN false ELSE e.enabled END,
            disabled_reason = CASE
                WHEN e.enabled AND e.failing_since < clock_timestamp() - make_interval(secs => $2)
                THEN 'failing' ELSE e.disabled_reason END
        FROM (SELECT enabled FROM endpoints WHERE id = $1 FOR UPDATE) AS was
        WHERE e.id = $1
        RETURNING was.enabled AND NOT e.enabled AS disabled,
                  e.id, e.seller_id, e.mode, e.url, e.description, e.failing_since
        """,
        endpoint_id,
        disable_after_seconds,
    )
    return row if row is not None and row["disabled"] else None


async def attempts_of(
    conn: asyncpg.Connection, endpoint_id: UUID, limit: int, before: int | None
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT a.id, a.event_id, ev.type AS event_type, a.attempt, a.attempted_at,
               a.status_code, a.latency_ms, a.response_excerpt, a.error,
               d.status AS delivery_status
        FROM attempts a
        JOIN deliveries d ON d.id = a.delivery_id
        JOIN events ev ON ev.id = a.event_id
        WHERE a.endpoint_id = $1 AND ($3::bigint IS NULL OR a.id < $3)
        ORDER BY a.id DESC
        LIMIT $2
        """,
        endpoint_id,
        limit,
        before,
    )
    return rows


# --- retention (deliveries/retention.py) -----------------------------------------------


# A delivery of event `ev` still due, or tried within the horizon ($1 seconds).
STILL_LIVE = """
    SELECT 1 FROM deliveries d
    WHERE d.event_id = ev.id
      AND (d.status = 'pending' OR EXISTS (
          SELECT 1 FROM attempts a
          WHERE a.delivery_id = d.id
            AND a.attempted_at >= clock_timestamp() - make_interval(secs => $1)
      ))
"""


async def sweep_attempts(conn: asyncpg.Connection, horizon_seconds: float, batch: int) -> int:
    """Delete up to `batch` log rows older than the horizon whose delivery is over
    (delivered or failed). The delivery is held (`FOR SHARE`) while its rows go, so one a
    replay queues again meanwhile keeps its log; a pending one is never touched."""
    status: str = await conn.execute(
        """
        DELETE FROM attempts WHERE id IN (
            SELECT a.id FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
            WHERE a.attempted_at < clock_timestamp() - make_interval(secs => $1)
              AND d.status <> 'pending'
            ORDER BY a.id
            LIMIT $2
            FOR UPDATE OF a SKIP LOCKED
            FOR SHARE OF d SKIP LOCKED
        )
        """,
        horizon_seconds,
        batch,
    )
    return int(status.rsplit(" ", 1)[-1])


async def lock_old_events(
    conn: asyncpg.Connection, horizon_seconds: float, batch: int
) -> list[UUID]:
    """Lock up to `batch` events kept before the horizon that look finished (oldest first),
    skipping any a replay holds. A replay locks its event before queueing it, so once these
    are locked no delivery of theirs can become due until this transaction ends; whether
    they are finished is checked again after the lock (`delete_finished_events`)."""
    rows = await conn.fetch(
        f"""
        SELECT ev.id FROM events ev
        WHERE ev.created_at < clock_timestamp() - make_interval(secs => $1)
          AND NOT EXISTS ({STILL_LIVE})
        ORDER BY ev.created_at
        LIMIT $2
        FOR UPDATE OF ev SKIP LOCKED
        """,  # noqa: S608 - constant SQL; values are parameters
        horizon_seconds,
        batch,
    )
    return [row["id"] for row in rows]


async def delete_finished_events(
    conn: asyncpg.Connection, event_ids: list[UUID], horizon_seconds: float
) -> int:
    """Delete those of `event_ids` (locked by `lock_old_events`) with no delivery still due
    and no attempt within the horizon; their deliveries and log go with them (cascade).
    A statement of its own after the lock, so it sees every replay committed before."""
    status: str = await conn.execute(
        f"""
        DELETE FROM events ev
        WHERE ev.id = ANY ($2::uuid[]) AND NOT EXISTS ({STILL_LIVE})
        """,  # noqa: S608 - constant SQL; values are parameters
        horizon_seconds,
        event_ids,
    )
    return int(status.rsplit(" ", 1)[-1])
