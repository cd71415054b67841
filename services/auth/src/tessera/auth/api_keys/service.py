"""API-key verbs for a seller's members: create a pair, list, rotate with an overlap,
revoke. Every change writes the key's whole record (`ApiKeyChanged`, hash only) to the
outbox in its transaction, with an audit entry; the record also goes into this replica's
own book at once (the relay brings it to every other replica)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

import asyncpg

from tessera.auth.api_keys import queries
from tessera.auth.api_keys.schemas import KeyOut, NewKey, PairCreated, PairRequest
from tessera.auth.audit import service as audit
from tessera.auth.context import Auth
from tessera.auth.members import service as members
from tessera.shared import outbox
from tessera.shared.api_keys import generate
from tessera.shared.events.auth import ApiKeyChanged
from tessera.shared.events.envelope import new_event_id
from tessera.shared.http.problems import NotFound
from tessera.shared.sellers import Tenant
from tessera.shared.tokens import Principal

log = logging.getLogger("tessera.auth.api_keys")


class NoSuchPair(NotFound):
    slug = "unknown-key-pair"
    title = "Unknown key pair"

    def __init__(self) -> None:
        super().__init__("The seller has no active key pair with this id.")


def record_of(row: asyncpg.Record) -> ApiKeyChanged:
    return ApiKeyChanged(
        key_id=row["id"],
        seller_id=row["seller_id"],
        mode=row["mode"],
        key_hash=bytes(row["key_hash"]).hex(),
        kind=row["kind"],
        status=row["status"],
        not_after=row["not_after"],
        version=row["version"],
    )


def key_out(row: asyncpg.Record, now: datetime) -> KeyOut:
    status: Literal["active", "expired", "revoked"] = "active"
    if row["status"] == "revoked":
        status = "revoked"
    elif row["not_after"] is not None and row["not_after"] <= now:
        status = "expired"
    return KeyOut(
        id=row["id"], pair_id=row["pair_id"], name=row["name"], mode=row["mode"],
        kind=row["kind"], prefix=row["display_prefix"], last4=row["last4"], status=status,
        not_after=row["not_after"], created_at=row["created_at"],
        last_used_at=row["last_used_at"],
    )  # fmt: skip


async def _publish(
    auth: Auth, conn: asyncpg.Connection, rows: list[asyncpg.Record]
) -> list[ApiKeyChanged]:
    records = [record_of(r) for r in rows]
    for record in records:
        await outbox.add(conn, record)
    return records


def _apply(auth: Auth, records: list[ApiKeyChanged]) -> None:
    # After the commit: this replica refuses or accepts at once, not a relay round later.
    for record in records:
        auth.key_book.apply(record)


async def _new_pair(
    auth: Auth, conn: asyncpg.Connection, seller_id: UUID, name: str,
    mode: Literal["test", "live"], actor: UUID | None,
) -> tuple[PairCreated, list[ApiKeyChanged]]:  # fmt: skip
    pair_id = new_event_id()
    issued_pk, issued_sk = generate("publishable", mode), generate("secret", mode)
    pk = await queries.insert(conn, new_event_id(), seller_id, pair_id, name, issued_pk, actor)
    sk = await queries.insert(conn, new_event_id(), seller_id, pair_id, name, issued_sk, actor)
    records = await _publish(auth, conn, [pk, sk])
    created = PairCreated(
        pair_id=pair_id, name=name, mode=mode, created_at=pk["created_at"],
        publishable=NewKey(id=pk["id"], key=issued_pk.plaintext),
        secret=NewKey(id=sk["id"], key=issued_sk.plaintext),
    )  # fmt: skip
    return created, records


def require_owner_for_live(role: str, mode: str) -> None:
    if mode == "live" and role != "owner":
        raise members.OwnerRequired()


async def create_pair(
    auth: Auth, principal: Principal, slug: str, body: PairRequest, *, ip: str
) -> PairCreated:
    """A new named pair for a mode; its keys are in this answer only. A live secret key
    acts for the seller in full (it can connect a Stripe account, where the customers'
    money goes): only an owner makes one; developers make test keys."""
    seller, role = await members.membership(auth, principal, slug)
    require_owner_for_live(role, body.mode)
    return await issue_pair(auth, seller.id, body.name, body.mode, principal.user_id, ip=ip)


async def issue_pair(
    auth: Auth, seller_id: UUID, name: str, mode: Literal["test", "live"], actor: UUID | None,
    *, ip: str | None = None,
) -> PairCreated:  # fmt: skip
    """A new pair for the seller (whoever may act for it has been checked)."""
    async with auth.pool.acquire() as conn, conn.transaction():
        created, records = await _new_pair(auth, conn, seller_id, name, mode, actor)
        await audit.record(
            conn, "api_key.created", Tenant(seller_id, mode), actor_id=actor,
            ip=ip, pair_id=str(created.pair_id), name=name,
        )  # fmt: skip
    _apply(auth, records)
    return created


async def list_keys(auth: Auth, principal: Principal, slug: str) -> list[KeyOut]:
    seller, _ = await members.membership(auth, principal, slug)
    now = datetime.now(UTC)
    return [key_out(r, now) for r in await queries.of_seller(auth.pool, seller.id)]


async def rotate(
    auth: Auth, principal: Principal, slug: str, pair_id: UUID, overlap_seconds: int, *, ip: str
) -> PairCreated:
    """A new pair with the old one's name and mode; the old pair works `overlap_seconds`
    longer (0: it stops now). Rotating a pair twice only ever shortens its overlap."""
    seller, role = await members.membership(auth, principal, slug)
    async with auth.pool.acquire() as conn, conn.transaction():
        old = [
            r for r in await queries.lock_pair(conn, seller.id, pair_id) if r["status"] == "active"
        ]
        if not old:
            raise NoSuchPair()
        require_owner_for_live(role, old[0]["mode"])  # a rotation shows a new secret
        not_after = await conn.fetchval("SELECT clock_timestamp()") + timedelta(
            seconds=overlap_seconds
        )
        ended = await queries.set_not_after(conn, seller.id, pair_id, not_after)
        records = await _publish(auth, conn, ended)
        created, made = await _new_pair(
            auth, conn, seller.id, old[0]["name"], old[0]["mode"], principal.user_id
        )
        await audit.record(
            conn, "api_key.rotated", Tenant(seller.id, old[0]["mode"]),
            actor_id=principal.user_id, ip=ip, pair_id=str(pair_id),
            new_pair_id=str(created.pair_id), overlap_seconds=overlap_seconds,
        )  # fmt: skip
    _apply(auth, records + made)
    return created


async def revoke(auth: Auth, principal: Principal, slug: str, pair_id: UUID, *, ip: str) -> None:
    seller, _ = await members.membership(auth, principal, slug)
    await revoke_pair(auth, seller.id, pair_id, principal.user_id, ip=ip)


async def revoke_pair(
    auth: Auth, seller_id: UUID, pair_id: UUID, actor: UUID | None, *, ip: str | None = None
) -> None:
    """Both keys of the seller's pair stop working now, everywhere (within a NATS
    message's time); `NoSuchPair` if it is not the seller's or is revoked already."""
    async with auth.pool.acquire() as conn, conn.transaction():
        revoked = await queries.revoke(conn, seller_id, pair_id)
        if not revoked:
            raise NoSuchPair()
        records = await _publish(auth, conn, revoked)
        await audit.record(
            conn, "api_key.revoked", Tenant(seller_id, revoked[0]["mode"]),
            actor_id=actor, ip=ip, pair_id=str(pair_id),
        )  # fmt: skip
    _apply(auth, records)
    log.info("auth.api_key.revoked", extra={"pair_id": str(pair_id)})


async def republish_all(pool: asyncpg.Pool) -> int:
    """Write every key's current record to the outbox again (a lost `APIKEYS` stream is
    rebuilt from the table; replicas drop records not newer than the one they hold, so the
    current version is republished as is). Returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await queries.every_key(conn)
        for row in rows:
            # A fresh event id each: the stream's duplicate window must not swallow it.
            await outbox.add(conn, record_of(row))
    return len(rows)
