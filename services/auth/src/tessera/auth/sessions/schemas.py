"""Session requests and responses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from tessera.auth.sessions.store import SessionRecord

SessionSecret = Field(min_length=20, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$")


class TokenRequest(BaseModel):
    session_id: str = SessionSecret


class SignOutRequest(BaseModel):
    session_id: str = SessionSecret


class AccessTokenOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a type, not a secret
    expires_in: int
    session: str = Field(description="The session's public handle (the token's `sid`).")


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class SessionOut(BaseModel):
    id: str = Field(description="Public handle: use it to revoke; it is not the session id.")
    kind: Literal["browser", "device"]
    current: bool
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str
    device: str
    client_id: str | None = None
    client_name: str | None = None
    client_version: str | None = None

    @classmethod
    def of(cls, record: SessionRecord, current_handle: str) -> SessionOut:
        return cls(
            id=record.handle,
            kind="device" if record.kind == "device" else "browser",
            current=record.handle == current_handle,
            created_at=_at(record.created_at),
            last_seen_at=_at(record.last_seen_at),
            expires_at=_at(record.expires_at),
            ip=record.ip,
            device=record.device,
            client_id=record.client_id or None,
            client_name=record.client_name or None,
            client_version=record.client_version or None,
        )


class SessionList(BaseModel):
    sessions: list[SessionOut]


class RevokeAll(BaseModel):
    keep_current: bool = False


class Revoked(BaseModel):
    revoked: int
