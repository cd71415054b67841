"""A seller's API keys over HTTP, for its members (owners and developers) with their access
token; the `{slug}` only picks which of the caller's sellers is meant."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, Response

from tessera.auth.api_keys import service
from tessera.auth.api_keys.schemas import KeyList, PairCreated, PairRequest, RotateRequest
from tessera.auth.context import AuthDep
from tessera.auth.members import service as members
from tessera.auth.requests import client_ip
from tessera.auth.sellers.schemas import Slug
from tessera.shared.http.openapi import problems
from tessera.shared.tokens import Forbidden, Principal, PrincipalDep

router = APIRouter(prefix="/v1/sellers/{slug}/keys", tags=["api-keys"])

PROBLEMS = problems(members.NoSuchSeller, Forbidden)
PAIR_PROBLEMS = problems(members.NoSuchSeller, service.NoSuchPair, Forbidden)


async def _member(auth: AuthDep, principal: PrincipalDep) -> Principal:
    await auth.limiter.enforce(
        auth.settings.rl_sellers_per_user, "sellers-user", str(principal.user_id)
    )
    return principal


@router.post("", status_code=201, responses=PROBLEMS)
async def create_pair(
    slug: Slug, body: PairRequest, auth: AuthDep, principal: PrincipalDep, request: Request
) -> PairCreated:
    """Make a named key pair for a mode. The keys are in this answer only: no later call
    shows them again."""
    caller = await _member(auth, principal)
    return await service.create_pair(auth, caller, slug, body, ip=client_ip(request))


@router.get("", responses=PROBLEMS)
async def list_keys(slug: Slug, auth: AuthDep, principal: PrincipalDep) -> KeyList:
    """Every key of the seller: prefix and last four, never the key."""
    return KeyList(keys=await service.list_keys(auth, await _member(auth, principal), slug))


@router.post("/{pair_id}/rotate", status_code=201, responses=PAIR_PROBLEMS)
async def rotate_pair(
    slug: Slug,
    pair_id: UUID,
    body: RotateRequest,
    auth: AuthDep,
    principal: PrincipalDep,
    request: Request,
) -> PairCreated:
    """Make a new pair (same name and mode); the old one keeps working for the overlap."""
    caller = await _member(auth, principal)
    return await service.rotate(
        auth, caller, slug, pair_id, body.overlap_seconds, ip=client_ip(request)
    )


@router.delete("/{pair_id}", status_code=204, responses=PAIR_PROBLEMS)
async def revoke_pair(
    slug: Slug, pair_id: UUID, auth: AuthDep, principal: PrincipalDep, request: Request
) -> Response:
    """Revoke both keys of the pair now, at every replica of every service."""
    caller = await _member(auth, principal)
    await service.revoke(auth, caller, slug, pair_id, ip=client_ip(request))
    return Response(status_code=204)
