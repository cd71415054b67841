"""Desktop HTTP: parse, rate-limit (in memory), call the service, write JSON."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from tessera.licensing.context import Licensing, LicensingDep
from tessera.licensing.desktop import service
from tessera.licensing.desktop import validate as one_validate
from tessera.licensing.desktop.schemas import (
    ActivateRequest,
    Answer,
    CheckinRequest,
    DeactivateRequest,
    HeartbeatRequest,
    ValidateRequest,
)
from tessera.licensing.desktop.signature import HEADER
from tessera.licensing.desktop.validate import key_id_of
from tessera.licensing.licenses import keyformat
from tessera.shared.http.context import client_ip
from tessera.shared.http.openapi import Jwk, problems
from tessera.shared.http.problems import Problem
from tessera.shared.tokens import current_principal


class PublishedKeys(BaseModel):
    """GET /v1/public-keys: what an app verifies (`key_sets`) and, unverified, what people
    and tools read (`keys`, `roots`)."""

    keys: list[Jwk] = Field(description="The lease-signing keys as a plain JWK Set (unverified).")
    key_sets: list[str] = Field(
        description="The signed key set: one compact JWS per root that signed its latest version."
    )
    roots: list[Jwk] = Field(
        description="The roots' public halves (unverified: pin them at build)."
    )


PUBLISHED_KEYS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"model": PublishedKeys, "description": "The signed key set and the plain key lists."}
}

HEADER_NAME = HEADER.decode()
router = APIRouter(prefix="/v1", tags=["desktop"])
ANSWER: dict[int | str, dict[str, Any]] = {200: {"model": Answer}}


class KeyOrTokenRequired(Problem):
    status = 400
    slug = "key-or-token-required"
    title = "A license key or an access token is required"


def key_id(key: str) -> str:
    return key_id_of(keyformat.lookup_hash(key))


def json_response(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def limit(licensing: Licensing, request: Request, key: str) -> None:
    """Decided in memory (no await); the counts are shared through Redis in the background."""
    hits = (licensing.per_ip, client_ip(request)), (licensing.per_key, key)
    licensing.synced_limiter.enforce(*hits)


@router.post("/licenses/validate", responses=ANSWER, summary="Is this license valid here?")
async def validate(req: ValidateRequest, request: Request) -> Response:
    # The hot path takes no dependencies: FastAPI runs a sync one in a worker thread, and
    # every hop shows in p99. The context is read straight off the app. Signed here, by the
    # code the fast path runs too (SignedResponses leaves a signed answer as it is).
    licensing: Licensing = request.app.state.context
    signed = await one_validate.validate(licensing, req, client_ip(request))
    return Response(
        signed.body, media_type="application/json", headers={HEADER_NAME: signed.signature.decode()}
    )


@router.post("/licenses/heartbeat", responses=ANSWER, summary="This machine still runs")
async def heartbeat(req: HeartbeatRequest, request: Request) -> Response:
    # As validate: no dependencies, answered from memory, signed here (desktop/validate.py).
    licensing: Licensing = request.app.state.context
    signed = await one_validate.heartbeat(licensing, req, client_ip(request))
    return Response(
        signed.body, media_type="application/json", headers={HEADER_NAME: signed.signature.decode()}
    )


ACTIVATE: dict[str, Any] = {
    "responses": {**ANSWER, **problems(KeyOrTokenRequired)},
    # A license key in the body, or else the owner's access token.
    "openapi_extra": {"security": [{"bearer": []}, {}]},
}


@router.post(
    "/licenses/checkout",
    summary="Take a floating seat (activating this machine if needed)",
    description="The same call as activate: under a floating policy, activate checks a seat "
    "out too. An app of a floating product calls this at start-up.",
    **ACTIVATE,
)
@router.post("/licenses/activate", summary="Bind this machine to a seat", **ACTIVATE)
async def activate(req: ActivateRequest, request: Request, licensing: LicensingDep) -> Response:
    owner = None
    if req.key is not None:
        limit(licensing, request, key_id(req.key))
    else:
        if "authorization" not in request.headers:
            raise KeyOrTokenRequired()
        principal = await current_principal(request)
        owner = principal.tenant, principal.account_id
        limit(licensing, request, f"acc:{principal.account_id}")
    ring = licensing.ring
    body = await service.activate(
        licensing.pool, licensing.cache, ring.signer, licensing.sealer, req, owner
    )
    return json_response(body)


@router.post("/licenses/deactivate", responses=ANSWER, summary="Free this machine's seat")
async def deactivate(req: DeactivateRequest, request: Request, licensing: LicensingDep) -> Response:
    limit(licensing, request, key_id(req.key))
    return json_response(await service.deactivate(licensing.pool, licensing.cache, req))


@router.post("/licenses/checkin", responses=ANSWER, summary="Give the floating seat back")
async def checkin(req: CheckinRequest, request: Request, licensing: LicensingDep) -> Response:
    limit(licensing, request, key_id(req.key))
    return json_response(await service.checkin(licensing.pool, licensing.cache, req))


@router.get(
    "/public-keys",
    summary="The root-signed key set of the lease-signing keys",
    responses=PUBLISHED_KEYS_RESPONSE,
)
async def public_keys(request: Request, licensing: LicensingDep) -> Response:
    """`key_sets`: the signed key set, one compact JWS per root that signed it (what an app
    verifies against its pinned roots); `keys`: the same lease keys as a plain JWKS, and
    `roots`: the roots' public halves, both unverified and for humans and tools only."""
    licensing.synced_limiter.enforce((licensing.per_ip, client_ip(request)))
    response = json_response(licensing.ring.published())
    # Old keys stay listed for the life of their last lease, so a cached copy stays useful.
    response.headers["cache-control"] = "public, max-age=300"
    return response
