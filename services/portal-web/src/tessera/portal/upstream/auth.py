"""Auth's API as the portal uses it (docs/auth.md, "The portal's API")."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from tessera.portal.upstream.base import Caller, Upstream


class Loose(BaseModel):
    # Tolerant of fields an upstream adds: a new field must not break a page.
    model_config = ConfigDict(extra="ignore")


class SignedInUser(Loose):
    id: UUID
    account_id: UUID
    email: str
    role: Literal["customer", "admin"]


class SignedIn(Loose):
    session_id: str
    session: str
    expires_at: datetime
    next: str | None = None
    user: SignedInUser


class AccessToken(Loose):
    access_token: str
    expires_in: int
    session: str


class SessionInfo(Loose):
    id: str
    kind: str
    current: bool
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str
    device: str
    client_name: str | None = None
    client_version: str | None = None


class PendingGrant(Loose):
    client_id: str
    client_name: str
    client_version: str | None = None
    ip: str
    requested_at: datetime
    expires_at: datetime


class User(Loose):
    id: UUID
    account_id: UUID
    email: str
    role: str
    disabled: bool
    created_at: datetime


class AuditEntry(Loose):
    at: datetime
    action: str
    actor_id: UUID | None = None
    ip: str | None = None
    detail: dict[str, Any] = {}


class AuthClient:
    def __init__(self, upstream: Upstream) -> None:
        self.up = upstream

    # --- signing in (no token) -------------------------------------------------------------
    async def request_link(
        self, caller: Caller, email: str, browser: str, next_path: str | None
    ) -> None:
        body: dict[str, Any] = {"email": email, "browser": browser}
        if next_path:
            body["next"] = next_path
        await self.up.call("POST", "/v1/magic-links", caller=caller, json=body, expect=(202,))

    async def verify(self, caller: Caller, **body: str) -> SignedIn:
        """`token`+`browser`, `token`+`code`+`browser`, or `email`+`code`+`browser`."""
        response = await self.up.call("POST", "/v1/magic-links/verify", caller=caller, json=body)
        return SignedIn.model_validate(response.json())

    async def exchange(self, caller: Caller, session_id: str) -> AccessToken:
        response = await self.up.call(
            "POST", "/v1/sessions/token", caller=caller, json={"session_id": session_id}
        )
        return AccessToken.model_validate(response.json())

    async def sign_out(self, caller: Caller, session_id: str) -> None:
        await self.up.call(
            "POST",
            "/v1/sessions/sign-out",
            caller=caller,
            json={"session_id": session_id},
            expect=(204,),
        )

    # --- the signed-in person --------------------------------------------------------------
    async def sessions(self, caller: Caller, token: str) -> list[SessionInfo]:
        response = await self.up.call("GET", "/v1/sessions", caller=caller, token=token)
        return [SessionInfo.model_validate(s) for s in response.json()["sessions"]]

    async def revoke_session(self, caller: Caller, token: str, handle: str) -> None:
        await self.up.call(
            "DELETE", f"/v1/sessions/{handle}", caller=caller, token=token, expect=(204,)
        )

    async def revoke_all(self, caller: Caller, token: str) -> int:
        response = await self.up.call(
            "POST",
            "/v1/sessions/revoke-all",
            caller=caller,
            token=token,
            json={"keep_current": False},
        )
        return int(response.json()["revoked"])

    async def device_lookup(self, caller: Caller, token: str, user_code: str) -> PendingGrant:
        response = await self.up.call(
            "POST", "/v1/device/lookup", caller=caller, token=token, json={"user_code": user_code}
        )
        return PendingGrant.model_validate(response.json())

    async def device_decide(
        self, caller: Caller, token: str, user_code: str, decision: Literal["approve", "deny"]
    ) -> None:
        await self.up.call(
            "POST",
            "/v1/device/approve",
            caller=caller,
            token=token,
            json={"user_code": user_code, "decision": decision},
        )

    # --- admin -----------------------------------------------------------------------------
    async def users(self, caller: Caller, token: str, email: str) -> list[User]:
        response = await self.up.call(
            "GET", "/v1/admin/users", caller=caller, token=token, params={"email": email}
        )
        return [User.model_validate(u) for u in response.json()["users"]]

    async def set_disabled(
        self, caller: Caller, token: str, user_id: UUID, disabled: bool, reason: str
    ) -> User:
        verb = "disable" if disabled else "enable"
        response = await self.up.call(
            "POST",
            f"/v1/admin/users/{user_id}/{verb}",
            caller=caller,
            token=token,
            json={"reason": reason},
        )
        return User.model_validate(response.json())

    async def audit(self, caller: Caller, token: str, user_id: UUID) -> list[AuditEntry]:
        response = await self.up.call(
            "GET",
            "/v1/admin/audit",
            caller=caller,
            token=token,
            params={"user_id": str(user_id), "limit": 50},
        )
        return [AuditEntry.model_validate(e) for e in response.json()["entries"]]


# --- a seller's members (the seller dashboard, docs/sellers.md) -----------------------------
class Membership(Loose):
    slug: str
    name: str
    role: Literal["owner", "developer"]
    status: str


class DashboardToken(Loose):
    access_token: str
    expires_in: int
    mode: Literal["test", "live"]
    role: Literal["owner", "developer"]


class SellerKey(Loose):
    id: UUID
    pair_id: UUID
    name: str
    mode: Literal["test", "live"]
    kind: Literal["publishable", "secret"]
    prefix: str
    last4: str
    status: str
    not_after: datetime | None = None
    created_at: datetime
    last_used_at: datetime | None = None


class NewKey(Loose):
    id: UUID
    key: str


class NewPair(Loose):
    pair_id: UUID
    name: str
    mode: Literal["test", "live"]
    publishable: NewKey
    secret: NewKey


class SellerAuth:
    """Auth's member routes, with the member's own access token (never a key)."""

    def __init__(self, upstream: Upstream) -> None:
        self.up = upstream

    async def mine(self, caller: Caller, token: str) -> list[Membership]:
        response = await self.up.call("GET", "/v1/sellers/mine", caller=caller, token=token)
        return [Membership.model_validate(m) for m in response.json()["sellers"]]

    async def dashboard_token(
        self, caller: Caller, token: str, slug: str, mode: str
    ) -> DashboardToken:
        response = await self.up.call(
            "POST", f"/v1/sellers/{slug}/dashboard-token", caller=caller, token=token,
            json={"mode": mode},
        )  # fmt: skip
        return DashboardToken.model_validate(response.json())

    async def keys(self, caller: Caller, token: str, slug: str) -> list[SellerKey]:
        response = await self.up.call("GET", f"/v1/sellers/{slug}/keys", caller=caller, token=token)
        return [SellerKey.model_validate(k) for k in response.json()["keys"]]

    async def create_keys(
        self, caller: Caller, token: str, slug: str, name: str, mode: str
    ) -> NewPair:
        response = await self.up.call(
            "POST", f"/v1/sellers/{slug}/keys", caller=caller, token=token,
            json={"name": name, "mode": mode}, expect=(201,),
        )  # fmt: skip
        return NewPair.model_validate(response.json())

    async def rotate_keys(
        self, caller: Caller, token: str, slug: str, pair_id: UUID, overlap_seconds: int
    ) -> NewPair:
        response = await self.up.call(
            "POST", f"/v1/sellers/{slug}/keys/{pair_id}/rotate", caller=caller, token=token,
            json={"overlap_seconds": overlap_seconds}, expect=(201,),
        )  # fmt: skip
        return NewPair.model_validate(response.json())

    async def revoke_keys(self, caller: Caller, token: str, slug: str, pair_id: UUID) -> None:
        await self.up.call(
            "DELETE", f"/v1/sellers/{slug}/keys/{pair_id}", caller=caller, token=token,
            expect=(204,),
        )  # fmt: skip
