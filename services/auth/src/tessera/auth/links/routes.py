"""Magic links over HTTP (called by the portal's server on behalf of a browser)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from tessera.auth.context import AuthDep
from tessera.auth.links import service
from tessera.auth.links.errors import CodeRequired, SignInFailed
from tessera.auth.links.schemas import LinkAccepted, LinkRequest, SignedIn, VerifyRequest, safe_next
from tessera.auth.requests import client_ip, user_agent
from tessera.shared.http.openapi import problems
from tessera.shared.http.problems import Problem

router = APIRouter(prefix="/v1/magic-links", tags=["magic links"])


class UnsafeNext(Problem):
    status = 422
    slug = "unsafe-next"
    title = "Unsafe next path"


@router.post("", status_code=202)
async def request_link(body: LinkRequest, auth: AuthDep, request: Request) -> LinkAccepted:
    if not safe_next(body.next, auth.settings.next_path_prefixes):
        raise UnsafeNext("`next` must be a relative path under an allowed prefix.")
    await service.request_link(auth, body.email, body.next, body.browser, ip=client_ip(request))
    return LinkAccepted()


@router.post("/verify", responses=problems(SignInFailed, CodeRequired))
async def verify(body: VerifyRequest, auth: AuthDep, request: Request) -> SignedIn:
    return await service.verify(auth, body, ip=client_ip(request), device=user_agent(request))
