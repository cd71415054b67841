"""Customer verbs for a seller's secret key. The tenant (seller and mode) is the key's; a
customer of another seller or of the other mode reads as absent (404). A customer's public
id is its account id, the id billing's and licensing's seller routes and the customer's
own tokens (`acc`) name it by; auth's user id stays inside auth."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from tessera.auth.audit import service as audit
from tessera.auth.context import Auth
from tessera.auth.customers.schemas import Customer, CustomerCreate, CustomerPage, CustomerUpdate
from tessera.auth.sessions import service as sessions
from tessera.auth.users import queries
from tessera.auth.users import service as users
from tessera.auth.users.schemas import User
from tessera.shared import outbox
from tessera.shared.accounts import account_id_for, normalize_email
from tessera.shared.api_keys import SellerCredential
from tessera.shared.events.envelope import new_event_id
from tessera.shared.http.problems import NotFound, Problem
from tessera.shared.sellers import Tenant


class NoSuchCustomer(NotFound):
    slug = "unknown-customer"
    title = "Unknown customer"

    def __init__(self) -> None:
        super().__init__("The seller has no customer with this id in this mode.")


def tenant_of(key: SellerCredential) -> Tenant:
    return Tenant(key.seller_id, key.mode)


def customer_row(row: asyncpg.Record | None) -> asyncpg.Record | None:
    """The row if it is a customer's. The home seller's tenant also holds the platform's
    operators (admins): the customer API neither shows nor changes them, so a home-seller
    key or member session can never read, disable or sign out an admin."""
    return row if row is not None and row["role"] == "customer" else None


class NotACustomer(Problem):
    status = 409
    slug = "not-a-customer"
    title = "Not a customer"


async def create(
    auth: Auth, key: SellerCredential, body: CustomerCreate, *, ip: str
) -> tuple[Customer, bool]:
    """The customer with this address in the key's tenant, made if new (then True): its
    id is the address's account id, and `auth.user.created.v1` tells billing and licensing
    of it. Two racing creates of one address make one customer."""
    tenant = tenant_of(key)
    email = normalize_email(body.email)
    async with auth.pool.acquire() as conn, conn.transaction():
        existing = await queries.find_by_email(conn, tenant, email)
        if existing is not None:
            if customer_row(existing) is None:
                raise NotACustomer("This address belongs to an operator of the platform.")
            return Customer.of(existing), False
        # Derived, not drawn: a purchase of the same address in billing, racing this,
        # makes the same account id (tessera.shared.accounts).
        user_id, account_id = new_event_id(), account_id_for(tenant, email)
        row = await queries.insert_customer(
            conn, tenant, user_id, account_id, email, body.name, body.metadata
        )
        if row is None:  # a concurrent create of the same address won the unique index
            raced = await queries.find_by_email(conn, tenant, email)
            assert raced is not None
            return Customer.of(raced), False
        await outbox.add(conn, users.created(user_id, account_id, email, "customer", tenant))
        await audit.record(
            conn, "user.created", tenant, user_id=user_id, actor_id=key.member_id, ip=ip,
            source="api", **key.audit_fields,
        )  # fmt: skip
    return Customer.of(row), True


async def get(auth: Auth, key: SellerCredential, customer_id: UUID) -> Customer:
    row = customer_row(
        await queries.find_in_tenant(auth.pool, tenant_of(key), customer_id, by="account_id")
    )
    if row is None:
        raise NoSuchCustomer()
    return Customer.of(row)


async def find(auth: Auth, key: SellerCredential, email: str) -> CustomerPage:
    row = customer_row(
        await queries.find_by_email(auth.pool, tenant_of(key), normalize_email(email))
    )
    return CustomerPage(data=[Customer.of(row)] if row else [], has_more=False, next_cursor=None)


async def page(
    auth: Auth, key: SellerCredential, starting_after: UUID | None, limit: int
) -> CustomerPage:
    rows = await queries.customers_after(auth.pool, tenant_of(key), starting_after, limit + 1)
    data = [Customer.of(r) for r in rows[:limit]]
    more = len(rows) > limit
    return CustomerPage(data=data, has_more=more, next_cursor=data[-1].id if more else None)


async def update(
    auth: Auth, key: SellerCredential, customer_id: UUID, body: CustomerUpdate, *, ip: str
) -> Customer:
    """Name, metadata and the disabled flag in one transaction; disabling ends the
    customer's sessions after the commit."""
    tenant = tenant_of(key)
    async with auth.pool.acquire() as conn, conn.transaction():
        row = customer_row(
            await queries.find_in_tenant(
                conn, tenant, customer_id, by="account_id", for_update=True
            )
        )
        if row is None:
            raise NoSuchCustomer()
        user = User.of(row)
        if body.name is not None or body.metadata is not None:
            await queries.update_customer(conn, user.id, body.name, body.metadata)
            await audit.record(
                conn, "user.updated", tenant, user_id=user.id, actor_id=key.member_id, ip=ip,
                **key.audit_fields,
                fields=sorted(body.model_dump(exclude_none=True, exclude={"disabled"})),
            )  # fmt: skip
        disabled = False
        if body.disabled is True:
            disabled = await users.set_disabled_in(conn, user, True, ip=ip, reason="api")
        elif body.disabled is False:
            await users.set_disabled_in(conn, user, False, ip=ip, reason="api")
        after = await queries.find_in_tenant(conn, tenant, customer_id, by="account_id")
        assert after is not None
    if disabled:
        await sessions.store(auth).delete_all(user.id)
    return Customer.of(after)
