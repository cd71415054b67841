"""Audit verbs."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from tessera.auth.audit import queries
from tessera.auth.audit.schemas import AuditEntry
from tessera.shared.events.envelope import new_event_id
from tessera.shared.sellers import Tenant

log = logging.getLogger("tessera.auth.audit")


async def record(
    conn: asyncpg.Connection | asyncpg.Pool,
    action: str,
    tenant: Tenant,
    *,
    user_id: UUID | None = None,
    actor_id: UUID | None = None,
    ip: str | None = None,
    **detail: Any,
) -> None:
    """Write one audit row (on `conn`, so it commits with the change it describes), in the
    tenant whose data it is about."""
    await queries.insert(
        conn,
        new_event_id(),
        action,
        tenant,
        actor_id=actor_id,
        user_id=user_id,
        ip=ip,
        detail=detail,
    )
    log.info("auth.audit.%s", action, extra={"user_id": str(user_id) if user_id else None})


async def list_entries(
    pool: asyncpg.Pool,
    tenant: Tenant,
    *,
    user_id: UUID | None,
    action: str | None,
    before: datetime | None,
    limit: int,
) -> list[AuditEntry]:
    rows = await queries.page(
        pool, tenant, user_id=user_id, action=action, before=before, limit=limit
    )
    return [AuditEntry.of(row) for row in rows]
