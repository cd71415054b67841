"""Licensing's customer and admin API as the portal uses it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from tessera.portal.upstream.base import Caller, Upstream


class Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Machine(Loose):
    id: UUID
    machine_name: str | None = None
    platform: str | None = None
    app_version: str | None = None
    created_at: datetime
    # Not every licensing version reports these; the page shows what it gets.
    last_seen_at: datetime | None = None
    last_validated_at: datetime | None = None
    # The machine's last heartbeat (its activation until it sends one), and the end of the
    # floating seat it holds, if any.
    last_heartbeat_at: datetime | None = None
    seat_until: datetime | None = None

    @property
    def seen(self) -> datetime | None:
        return self.last_seen_at or self.last_validated_at


class License(Loose):
    id: UUID
    key: str
    account_id: UUID
    email: str
    product: str
    policy: str
    order_id: UUID | None = None
    source: str
    status: str
    status_reason: str | None = None
    expires_at: datetime | None = None
    created_at: datetime
    activations: list[Machine] = []
    entitlements: list[str] = []
    max_machines: int | None = None


class AuditEntry(Loose):
    at: datetime
    actor_role: str
    action: str
    license_id: UUID | None = None
    detail: dict[str, Any] = {}


class LicensingClient:
    def __init__(self, upstream: Upstream) -> None:
        self.up = upstream

    async def my_licenses(self, caller: Caller, token: str) -> list[License]:
        response = await self.up.call("GET", "/v1/me/licenses", caller=caller, token=token)
        return [License.model_validate(x) for x in response.json()]

    async def remove_machine(
        self, caller: Caller, token: str, license_id: UUID, activation_id: UUID
    ) -> None:
        await self.up.call(
            "DELETE",
            f"/v1/me/licenses/{license_id}/activations/{activation_id}",
            caller=caller,
            token=token,
            expect=(204,),
        )

    # --- admin -----------------------------------------------------------------------------
    async def search(self, caller: Caller, token: str, **by: str) -> list[License]:
        """By `key`, `email` or `account_id`."""
        response = await self.up.call(
            "GET", "/v1/admin/licenses", caller=caller, token=token, params=by
        )
        return [License.model_validate(x) for x in response.json()]

    async def grant(
        self, caller: Caller, token: str, account_id: UUID, email: str, policy: str, reason: str
    ) -> list[License]:
        body = {"account_id": str(account_id), "email": email, "policy": policy, "reason": reason}
        response = await self.up.call(
            "POST", "/v1/admin/licenses", caller=caller, token=token, json=body, expect=(201,)
        )
        return [License.model_validate(x) for x in response.json()]

    async def act(
        self, caller: Caller, token: str, license_id: UUID, verb: str, reason: str
    ) -> License:
        """`suspend`, `reinstate`, `revoke` or `reset-activations`."""
        response = await self.up.call(
            "POST",
            f"/v1/admin/licenses/{license_id}/{verb}",
            caller=caller,
            token=token,
            json={"reason": reason},
        )
        return License.model_validate(response.json())

    async def audit(self, caller: Caller, token: str, license_id: UUID) -> list[AuditEntry]:
        response = await self.up.call(
            "GET",
            "/v1/admin/audit",
            caller=caller,
            token=token,
            params={"license_id": str(license_id), "limit": 50},
        )
        return [AuditEntry.model_validate(x) for x in response.json()]

    async def export(self, caller: Caller, token: str) -> bytes:
        response = await self.up.call("GET", "/v1/admin/licenses.csv", caller=caller, token=token)
        return response.content
