"""Sessions over HTTP.

`POST /v1/sessions/token` and `/v1/sessions/sign-out` take the secret session id (the
portal's cookie value) in the body; the rest act for the caller named by an access token.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from tessera.auth.context import AuthDep
from tessera.auth.requests import client_ip
from tessera.auth.sessions import service
from tessera.auth.sessions.errors import SessionInvalid
from tessera.auth.sessions.schemas import (
    AccessTokenOut,
    RevokeAll,
    Revoked,
    SessionList,
    SessionOut,
    SignOutRequest,
    TokenRequest,
)
from tessera.shared.http.openapi import problems
from tessera.shared.http.problems import NotFound
from tessera.shared.tokens import PrincipalDep

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


@router.post("/token", responses=problems(SessionInvalid))
async def token(body: TokenRequest, auth: AuthDep, request: Request) -> AccessTokenOut:
    access, handle = await service.exchange(auth, body.session_id, ip=client_ip(request))
    return AccessTokenOut(access_token=access.token, expires_in=access.expires_in, session=handle)


@router.post("/sign-out", status_code=204)
async def sign_out(body: SignOutRequest, auth: AuthDep, request: Request) -> Response:
    ip = client_ip(request)
    await auth.limiter.enforce(auth.settings.rl_verify_per_ip, "sign-out-ip", ip)
    await service.sign_out(auth, body.session_id, ip=ip)
    return Response(status_code=204)


async def _caller_checks(auth: AuthDep, principal: PrincipalDep) -> None:
    await auth.limiter.enforce(
        auth.settings.rl_sessions_per_user, "sessions-user", str(principal.user_id)
    )
    await service.require_live(auth, principal)


@router.get("")
async def list_sessions(auth: AuthDep, principal: PrincipalDep) -> SessionList:
    await _caller_checks(auth, principal)
    records = await service.list_sessions(auth, principal)
    return SessionList(sessions=[SessionOut.of(r, principal.session_id) for r in records])


@router.delete("/{handle}", status_code=204)
async def revoke(handle: str, auth: AuthDep, principal: PrincipalDep, request: Request) -> Response:
    await _caller_checks(auth, principal)
    if len(handle) > 64 or not await service.revoke(auth, principal, handle, ip=client_ip(request)):
        raise NotFound("No such session.")
    return Response(status_code=204)


@router.post("/revoke-all")
async def revoke_all(
    auth: AuthDep, principal: PrincipalDep, request: Request, body: RevokeAll | None = None
) -> Revoked:
    await _caller_checks(auth, principal)
    count = await service.revoke_all(
        auth, principal, keep_current=bool(body and body.keep_current), ip=client_ip(request)
    )
    return Revoked(revoked=count)
