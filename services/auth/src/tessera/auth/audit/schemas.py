"""Audit entries as admins read them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel


class AuditEntry(BaseModel):
    id: UUID
    at: datetime
    action: str
    actor_id: UUID | None
    user_id: UUID | None
    ip: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, row: asyncpg.Record) -> AuditEntry:
        return cls(
            id=row["id"],
            at=row["at"],
            action=row["action"],
            actor_id=row["actor_id"],
            user_id=row["user_id"],
            ip=row["ip"],
            detail=json.loads(row["detail"]),
        )


class AuditPage(BaseModel):
    entries: list[AuditEntry]
