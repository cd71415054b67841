"""Customer HTTP: `GET /v1/me/licenses`, `DELETE .../activations/{id}`."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Response

from tessera.licensing.context import LicensingDep
from tessera.licensing.licenses import queries
from tessera.licensing.licenses import service as licenses
from tessera.licensing.licenses.schemas import LicenseOut
from tessera.shared.tokens import Principal, PrincipalDep

router = APIRouter(prefix="/v1/me", tags=["customer"])
RATE = "120/minute"


async def limited(licensing: LicensingDep, principal: PrincipalDep) -> Principal:
    await licensing.limiter.enforce(RATE, "me", str(principal.account_id))
    return principal


CustomerDep = Annotated[Principal, Depends(limited)]


@router.get("/licenses", summary="My licenses, with the machines each runs on")
async def my_licenses(licensing: LicensingDep, me: CustomerDep) -> list[LicenseOut]:
    async with licensing.pool.acquire() as conn:
        rows = await queries.licenses_of_account(conn, me.tenant, me.account_id)
        return await licenses.with_activations(conn, me.tenant, licensing.sealer, rows)


@router.delete(
    "/licenses/{license_id}/activations/{activation_id}",
    status_code=204,
    summary="Free a seat: remove one of my machines",
)
async def remove_my_activation(
    license_id: UUID, activation_id: UUID, licensing: LicensingDep, me: CustomerDep
) -> Response:
    await licenses.remove_own_activation(
        licensing.pool,
        licensing.cache,
        me.tenant,
        account_id=me.account_id,
        user_id=me.user_id,
        license_id=license_id,
        activation_id=activation_id,
    )
    return Response(status_code=204)
