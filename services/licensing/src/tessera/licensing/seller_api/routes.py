"""The seller's licensing API, with a secret key (`Authorization: Bearer sk_…`). The tenant
is the key's seller and mode, never a header, path or body; another tenant's customer or
license is a 404, as one that does not exist. A publishable key gets 403, no key 401."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header

from tessera.licensing.admin import service as admin
from tessera.licensing.admin.schemas import StatusRequest
from tessera.licensing.context import LicensingDep
from tessera.licensing.licenses import service as licenses
from tessera.licensing.licenses.schemas import LicenseOut
from tessera.licensing.seller_api import service
from tessera.licensing.seller_api.schemas import SellerGrantRequest
from tessera.shared.api_keys import SecretSellerDep, SellerCredential
from tessera.shared.sellers import Tenant

router = APIRouter(prefix="/v1", tags=["seller"])


async def seller_key(licensing: LicensingDep, seller: SecretSellerDep) -> SellerCredential:
    """The key's credential, once counted against its budget (per key id, so a seller's
    pairs do not share one and one seller cannot spend another's)."""
    licensing.synced_limiter.enforce((licensing.per_seller_key, str(seller.key_id)))
    return seller


SellerKey = Annotated[SellerCredential, Depends(seller_key)]


def tenant(seller: SellerCredential) -> Tenant:
    return Tenant(seller.seller_id, seller.mode)


def actor(seller: SellerCredential) -> admin.Actor:
    return admin.Actor(seller.key_id, seller.actor_role)


@router.post("/licenses", status_code=201, summary="Grant licenses to a customer")
async def grant(
    body: SellerGrantRequest,
    licensing: LicensingDep,
    seller: SellerKey,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")
    ] = None,
) -> list[LicenseOut]:
    return await service.grant(
        licensing.pool, tenant(seller), licensing.sealer, actor(seller), body, idempotency_key
    )


@router.get("/licenses/{license_id}", summary="One license, with its machines")
async def read(license_id: UUID, licensing: LicensingDep, seller: SellerKey) -> LicenseOut:
    return await service.one(licensing.pool, tenant(seller), licensing.sealer, license_id)


@router.get("/customers/{customer_id}/licenses", summary="A customer's licenses and machines")
async def of_customer(
    customer_id: UUID, licensing: LicensingDep, seller: SellerKey
) -> list[LicenseOut]:
    return await service.licenses_of(licensing.pool, tenant(seller), licensing.sealer, customer_id)


async def _set_status(
    licensing: LicensingDep,
    seller: SellerCredential,
    license_id: UUID,
    status: licenses.Status,
    reason: str,
) -> LicenseOut:
    return await admin.set_status(
        licensing.pool,
        tenant(seller),
        licensing.cache,
        licensing.sealer,
        actor(seller),
        license_id,
        status,
        reason,
    )


@router.post("/licenses/{license_id}/suspend", summary="Suspend a license (reason required)")
async def suspend(
    license_id: UUID, body: StatusRequest, licensing: LicensingDep, seller: SellerKey
) -> LicenseOut:
    return await _set_status(licensing, seller, license_id, "suspended", body.reason)


@router.post("/licenses/{license_id}/reinstate", summary="Reinstate a suspended license")
async def reinstate(
    license_id: UUID, body: StatusRequest, licensing: LicensingDep, seller: SellerKey
) -> LicenseOut:
    return await _set_status(licensing, seller, license_id, "active", body.reason)


@router.post("/licenses/{license_id}/revoke", summary="Revoke a license for good")
async def revoke(
    license_id: UUID, body: StatusRequest, licensing: LicensingDep, seller: SellerKey
) -> LicenseOut:
    return await _set_status(licensing, seller, license_id, "revoked", body.reason)
