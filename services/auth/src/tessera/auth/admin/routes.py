"""Admin HTTP: read users, disable or enable one, read the audit log. Roles are not
changeable here (operator CLI only). Admins are the operator's: every route acts on the
home seller's live data."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from tessera.auth.audit import service as audit
from tessera.auth.audit.schemas import AuditPage
from tessera.auth.context import AuthDep
from tessera.auth.requests import client_ip
from tessera.auth.sessions import service as sessions
from tessera.auth.users import service
from tessera.auth.users.schemas import ReasonBody, UserOut, UserPage
from tessera.shared.http.params import IsoDateTime
from tessera.shared.sellers import HOME_LIVE
from tessera.shared.tokens import AdminDep, Principal

router = APIRouter(prefix="/v1/admin", tags=["admin"])


async def admin(auth: AuthDep, principal: AdminDep) -> Principal:
    await auth.limiter.enforce(auth.settings.rl_admin_per_user, "admin", str(principal.user_id))
    await sessions.require_live(auth, principal)
    return principal


Admin = Annotated[Principal, Depends(admin)]


@router.get("/users")
async def list_users(
    auth: AuthDep,
    _: Admin,
    email: Annotated[str | None, Query(max_length=254)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> UserPage:
    users = await service.list_users(auth.pool, HOME_LIVE, email=email, limit=limit, offset=offset)
    return UserPage(users=[UserOut.of(u) for u in users])


@router.post("/users/{user_id}/disable")
async def disable(
    user_id: UUID, body: ReasonBody, auth: AuthDep, principal: Admin, request: Request
) -> UserOut:
    """Disabling needs a reason (422 without one); it is kept in the audit entry."""
    await service.disable(
        auth.pool,
        sessions.store(auth),
        HOME_LIVE,
        user_id,
        actor_id=principal.user_id,
        ip=client_ip(request),
        reason=body.reason,
    )
    return UserOut.of(await service.get_by_id(auth.pool, user_id))


@router.post("/users/{user_id}/enable")
async def enable(
    user_id: UUID, body: ReasonBody, auth: AuthDep, principal: Admin, request: Request
) -> UserOut:
    await service.enable(
        auth.pool,
        HOME_LIVE,
        user_id,
        actor_id=principal.user_id,
        ip=client_ip(request),
        reason=body.reason,
    )
    return UserOut.of(await service.get_by_id(auth.pool, user_id))


@router.get("/audit")
async def read_audit(
    auth: AuthDep,
    _: Admin,
    user_id: UUID | None = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    before: IsoDateTime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    entries = await audit.list_entries(
        auth.pool, HOME_LIVE, user_id=user_id, action=action, before=before, limit=limit
    )
    return AuditPage(entries=entries)
