"""`/v1/customers`: the customer API, for a seller's server with its secret key. A
publishable key is refused (403): it lives in browsers."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from pydantic import EmailStr

from tessera.auth.context import AuthDep
from tessera.auth.customers import service
from tessera.auth.customers.schemas import (
    PAGE_MAX,
    Customer,
    CustomerCreate,
    CustomerPage,
    CustomerUpdate,
)
from tessera.auth.requests import client_ip
from tessera.auth.sellers import service as sellers
from tessera.shared.api_keys import SecretSellerDep, SellerCredential
from tessera.shared.http.openapi import problems
from tessera.shared.tokens import Forbidden

router = APIRouter(prefix="/v1/customers", tags=["customers"])


async def _limited(auth: AuthDep, key: SecretSellerDep) -> SellerCredential:
    sellers.require_active_key(auth, key)
    await auth.limiter.enforce(auth.settings.rl_customers_per_key, "customers-key", str(key.key_id))
    return key


@router.post(
    "",
    status_code=201,
    responses={
        200: {
            "model": Customer,
            "description": "The address is a customer already: that customer.",
        },
        **problems(Forbidden, service.NotACustomer),
    },
)
async def create_customer(
    body: CustomerCreate, auth: AuthDep, key: SecretSellerDep, request: Request, response: Response
) -> Customer:
    """Create a customer in the key's seller and mode. Idempotent by address: the same
    email again answers the existing customer with 200."""
    customer, made = await service.create(
        auth, await _limited(auth, key), body, ip=client_ip(request)
    )
    if not made:
        response.status_code = 200
    return customer


@router.get("", responses=problems(Forbidden))
async def list_customers(
    auth: AuthDep,
    key: SecretSellerDep,
    email: Annotated[EmailStr | None, Query(max_length=254, description="Find by address")] = None,
    starting_after: Annotated[
        UUID | None, Query(description="`next_cursor` of the page before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 20,
) -> CustomerPage:
    """The key's customers, oldest first, a page at a time; or the one with `email`."""
    key = await _limited(auth, key)
    if email is not None:
        return await service.find(auth, key, email)
    return await service.page(auth, key, starting_after, limit)


@router.get("/{customer_id}", responses=problems(service.NoSuchCustomer, Forbidden))
async def get_customer(customer_id: UUID, auth: AuthDep, key: SecretSellerDep) -> Customer:
    return await service.get(auth, await _limited(auth, key), customer_id)


@router.patch("/{customer_id}", responses=problems(service.NoSuchCustomer, Forbidden))
async def update_customer(
    customer_id: UUID, body: CustomerUpdate, auth: AuthDep, key: SecretSellerDep, request: Request
) -> Customer:
    """Change the name or metadata, or disable (or enable) the customer."""
    return await service.update(
        auth, await _limited(auth, key), customer_id, body, ip=client_ip(request)
    )
