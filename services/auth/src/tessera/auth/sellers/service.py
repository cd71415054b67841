"""Seller verbs: make the home seller, make a seller, change its signup policy, and the
directory record each change publishes (`SellerChanged`, through the outbox)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

from tessera.auth.audit import service as audit
from tessera.auth.context import Auth
from tessera.auth.sellers import queries
from tessera.shared import outbox
from tessera.shared.api_keys import SellerCredential
from tessera.shared.api_keys.dependencies import INVALID_KEY
from tessera.shared.events.auth import PlanStatus, SellerChanged, SellerSettings
from tessera.shared.http.problems import Problem
from tessera.shared.sellers import HOME_LIVE, HOME_SELLER_ID, Tenant
from tessera.shared.tokens import Unauthorized

log = logging.getLogger("tessera.auth.sellers")


class SlugTaken(Problem):
    status = 409
    slug = "slug-taken"
    title = "Slug taken"

    def __init__(self) -> None:
        super().__init__("Another seller has this slug; choose another.")


class HomeSlugTaken(RuntimeError):
    """The home seller's configured slug belongs to another seller: start-up stops."""


@dataclass(frozen=True)
class Seller:
    id: UUID
    slug: str
    name: str
    signup_policy: Literal["closed", "open"]
    status: Literal["active", "suspended"]
    version: int
    settings: SellerSettings
    plan_status: PlanStatus = "none"
    plan_grace_until: datetime | None = None

    @classmethod
    def of(cls, row: asyncpg.Record) -> Seller:
        return cls(
            id=row["id"],
            slug=row["slug"],
            name=row["name"],
            signup_policy="open" if row["signup_policy"] == "open" else "closed",
            status="active" if row["status"] == "active" else "suspended",
            version=row["version"],
            settings=SellerSettings.model_validate_json(row["settings"]),
            plan_status=row["plan_status"],
            plan_grace_until=row["plan_grace_until"],
        )

    def record(self) -> SellerChanged:
        return SellerChanged(
            seller_id=self.id,
            slug=self.slug,
            name=self.name,
            signup_policy=self.signup_policy,
            status=self.status,
            version=self.version,
            settings=self.settings,
            plan_status=self.plan_status,
            plan_grace_until=self.plan_grace_until,
        )


async def publish(conn: asyncpg.Connection, seller: Seller) -> SellerChanged:
    """Write the seller's directory record to the outbox, in the caller's transaction."""
    record = seller.record()
    await outbox.add(conn, record)
    return record


async def ensure_home(auth: Auth) -> Seller:
    """The home seller's row, made at first start from settings. Idempotent, and safe when
    two replicas start at once: the insert is `ON CONFLICT DO NOTHING` on the fixed id, so
    one makes it and the other finds it. Its signup policy follows ALLOW_SIGNUP at every
    start. The record goes to this replica's directory at once (it is also published)."""
    s = auth.settings
    policy = "open" if s.allow_signup else "closed"
    async with auth.pool.acquire() as conn, conn.transaction():
        row = await queries.insert_if_absent(
            conn, HOME_SELLER_ID, s.home_seller_slug, s.home_seller_name, policy
        )
        if row is not None:
            await audit.record(
                conn, "seller.created", HOME_LIVE, slug=s.home_seller_slug, home=True
            )
        else:
            row = await queries.find_by_id(conn, HOME_SELLER_ID, for_update=True)
            if row is None:
                raise HomeSlugTaken(
                    f"TESSERA_AUTH_HOME_SELLER_SLUG={s.home_seller_slug!r} belongs to another seller"
                )
            changed = await queries.set_signup_policy(conn, HOME_SELLER_ID, policy)
            if changed is None:
                seller = Seller.of(row)
                auth.sellers.apply(seller.record())
                return seller
            row = changed
            await audit.record(conn, "seller.signup_policy_changed", HOME_LIVE, policy=policy)
        seller = Seller.of(row)
        record = await publish(conn, seller)
    auth.sellers.apply(record)
    return seller


async def create(conn: asyncpg.Connection, seller_id: UUID, slug: str, name: str) -> Seller:
    """A new seller (closed signup), published to the directory; `SlugTaken` if the slug is
    someone's (checked by the unique index, so two racing sign-ups cannot both have it)."""
    row = await queries.insert_if_absent(conn, seller_id, slug, name, "closed")
    if row is None:
        raise SlugTaken()
    seller = Seller.of(row)
    await publish(conn, seller)
    return seller


async def slug_free(pool: asyncpg.Pool, slug: str) -> bool:
    return not await queries.slug_taken(pool, slug)


async def by_id(conn: asyncpg.Connection | asyncpg.Pool, seller_id: UUID) -> Seller | None:
    row = await queries.find_by_id(conn, seller_id)
    return Seller.of(row) if row is not None else None


async def by_slug(conn: asyncpg.Connection | asyncpg.Pool, slug: str) -> Seller | None:
    row = await queries.find_by_slug(conn, slug)
    return Seller.of(row) if row is not None else None


async def slug_of(auth: Auth, seller_id: UUID) -> str:
    """A seller's slug, for a token: from the directory in memory, or its row when this
    replica has not heard of the seller yet (made by another replica a moment ago)."""
    entry = auth.sellers.by_id(seller_id)
    if entry is not None:
        return entry.slug
    seller = await by_id(auth.pool, seller_id)
    if seller is None:
        raise LookupError(f"no seller {seller_id}")
    return seller.slug


def tenant_live(seller: Seller) -> Tenant:
    """The seller's live tenant: what its sign-in page (named by slug) signs customers into."""
    return Tenant(seller.id, "live")


async def update(
    conn: asyncpg.Connection, seller: Seller, *, name: str | None, signup_policy: str | None
) -> Seller:
    """Rename the seller or change its signup policy, publishing the new record; the seller
    unchanged when nothing differs."""
    row = await queries.update(conn, seller.id, name, signup_policy)
    if row is None:
        return seller
    changed = Seller.of(row)
    await publish(conn, changed)
    return changed


async def update_settings(
    conn: asyncpg.Connection, seller_id: UUID, patch: dict[str, Any]
) -> tuple[Seller, list[str]]:
    """Merge `patch` (validated top-level fields; a None takes the field back to its default)
    into the seller's settings, in the caller's transaction: the seller and the names of
    the fields whose value changed. A change grows the version and publishes the record;
    no change writes nothing.

    The row keeps only the fields a seller set, so a default Tessera changes later reaches
    every seller who never chose that field."""
    row = await queries.find_by_id(conn, seller_id, for_update=True)
    if row is None:
        raise LookupError(f"no seller {seller_id}")
    seller = Seller.of(row)
    stored: dict[str, Any] = json.loads(row["settings"])
    for field, value in patch.items():
        if value is None:
            stored.pop(field, None)
        else:
            stored[field] = value
    merged = SellerSettings.model_validate(stored)
    changed = [f for f in patch if getattr(merged, f) != getattr(seller.settings, f)]
    if not changed:
        return seller, []
    row = await queries.set_settings(conn, seller_id, json.dumps(stored))
    seller = Seller.of(row)
    await publish(conn, seller)
    return seller, changed


async def set_status(
    pool: asyncpg.Pool, slug: str, status: Literal["active", "suspended"], *, actor: str
) -> Seller | None:
    """Suspend a seller (its customers' tokens are refused by every service once the record
    reaches it, and its sign-in page is gone) or make it active again (operator CLI only);
    published and audited. None when nothing changed (no such slug, or already so)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await queries.set_status(conn, slug, status)
        if row is None:
            return None
        seller = Seller.of(row)
        if seller.id == HOME_SELLER_ID and status == "suspended":
            raise ValueError("the home seller cannot be suspended")
        await publish(conn, seller)
        await audit.record(conn, f"seller.{status}", tenant_live(seller), slug=slug, by=actor)
    return seller


def require_active_key(auth: Auth, key: SellerCredential) -> SellerCredential:
    """`key`, if its seller is active in this process's directory: a suspended seller's
    keys are refused (the same 401 as any refused key) wherever auth takes one."""
    seller = auth.sellers.by_id(key.seller_id)
    if seller is None or not seller.active:
        raise Unauthorized(INVALID_KEY)
    return key
