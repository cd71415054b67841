"""Desktop verbs: validate (read-only, the hot path), activate and deactivate (row-locked,
published through the outbox). Each returns the answer as a plain dict, ready to encode."""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from tessera.licensing.cache import Known, License, LicenseCache
from tessera.licensing.desktop import queries
from tessera.licensing.desktop.queries import Locked
from tessera.licensing.desktop.schemas import (
    DETAILS,
    ActivateRequest,
    CheckinRequest,
    Code,
    DeactivateRequest,
    HeartbeatRequest,
    ValidateRequest,
)
from tessera.licensing.heartbeats.service import Heartbeats
from tessera.licensing.leases.claims import decoy_claims, lease_claims
from tessera.licensing.licenses import keyformat
from tessera.shared import outbox
from tessera.shared.events.envelope import new_event_id
from tessera.shared.events.licensing import MachineActivated, MachineDeactivated
from tessera.shared.keys import Sealer, Signer
from tessera.shared.sellers import Tenant

STATUS_CODES = {"suspended": Code.SUSPENDED, "revoked": Code.REVOKED}


def fingerprint_hash(fingerprint: str) -> str:
    return hashlib.sha256(fingerprint.encode()).hexdigest()


def iso(epoch: float) -> str:
    """`datetime.isoformat` in UTC with a Z, from the second's cached text (every answer
    carries the server time)."""
    second = int(epoch)
    micro = round((epoch - second) * 1_000_000)
    if isinstance(epoch, int) or micro == 0 or micro == 1_000_000:
        return iso_second(round(epoch))
    return f"{iso_second(second)[:-1]}.{micro:06d}Z"


@functools.lru_cache(maxsize=4096)
def iso_second(epoch: int) -> str:
    # Leases of one policy issued in the same second expire in the same second.
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def standing(row: License, now: float) -> Code | None:
    """Why the license itself cannot be used now, or None when it can."""
    code = STATUS_CODES.get(row.status)
    if code is not None:
        return code
    expires_at = row.expires_at
    if expires_at is not None and expires_at.timestamp() <= now:
        return Code.EXPIRED
    return None


def judge(
    known: Known | None, fp_hash: str, activation_id: UUID | None, now: float
) -> tuple[Code, UUID | None]:
    """The verdict on (license, machine), and the machine's activation when it has one."""
    if known is None:
        return Code.NOT_FOUND, None
    code = standing(known, now)
    if code is not None:
        return code, None
    mine = known.activations.get(fp_hash)
    if mine is not None:
        if known.floating and known.seats.get(fp_hash, 0.0) <= now:
            return Code.CHECKOUT_REQUIRED, mine
        return Code.VALID, mine
    if activation_id is not None and activation_id in known.activations.values():
        return Code.FINGERPRINT_MISMATCH, None
    # Floating: any number of machines may be activated; seats are what is counted.
    if not known.floating and len(known.activations) >= known.max_machines:
        return Code.TOO_MANY_ACTIVATIONS, None
    return Code.NOT_ACTIVATED, None


def seat_seconds(row: License) -> int:
    """How long a floating seat lasts unrenewed: the heartbeat interval and its grace."""
    return (row.heartbeat_seconds or 0) + row.heartbeat_grace_seconds


def timing(row: License, now: float, seat_until: float | None) -> dict[str, Any]:
    """The heartbeat and seat times of a valid answer, for the policies that have them."""
    extra: dict[str, Any] = {}
    if row.heartbeat_seconds is not None:
        extra["next_heartbeat_at"] = iso(int(now) + row.heartbeat_seconds)
    if seat_until is not None:
        extra["seat_expires_at"] = iso(seat_until)
    return extra


def answer(
    code: Code,
    now: float,
    nonce: str | None,
    row: License | None = None,
    **extra: Any,
) -> dict[str, Any]:
    valid = code is Code.VALID
    body: dict[str, Any] = {
        "valid": valid,
        "code": code.value,
        "detail": DETAILS[code],
        "server_time": iso(now),
        "nonce": nonce,
        "entitlements": list(row.entitlements) if valid and row is not None else [],
        "license": None,
    }
    if row is not None:
        expires_at = row.expires_at
        body["license"] = {
            "id": str(row.id),
            "product": row.product_code,
            "status": row.status,
            "expires_at": iso(expires_at.timestamp()) if expires_at else None,
        }
    body.update(extra)
    return body


def sign_lease(
    signer: Signer, row: License, fingerprint: str, now: int, until: float | None = None
) -> dict[str, Any]:
    """A fresh lease, ending no later than `until` (a floating seat's end) when given."""
    claims = lease_claims(
        license_id=row.id,
        account_id=row.account_id,
        product=row.product_code,
        entitlements=list(row.entitlements),
        fingerprint=fingerprint,
        status=row.status,
        now=now,
        lease_seconds=row.lease_seconds,
        grace_seconds=row.grace_seconds,
        license_expires_at=row.expires_at,
        until=None if until is None else int(until),
    )
    return {"lease": signer.jws(claims), "lease_expires_at": iso(claims["exp"])}


async def find_known(pool: asyncpg.Pool, cache: LicenseCache, key_hash: bytes) -> Known | None:
    """From memory when it can; otherwise one indexed read, remembered (unknown keys too).
    An entry due to be read again is answered while a background read refreshes it."""
    entry, due = cache.lookup(key_hash)

    async def read() -> Known | None:
        return await queries.lookup(pool, key_hash)

    if entry is None:
        if not cache.live:  # nothing is cached while the listener is away
            return await read()
        entry = await cache.load(key_hash, read)
    elif due:
        cache.refresh(key_hash, read)
    return entry if isinstance(entry, Known) else None


async def validate(
    pool: asyncpg.Pool,
    cache: LicenseCache,
    signer: Signer,
    req: ValidateRequest,
    key_hash: bytes | None = None,
) -> dict[str, Any]:
    """The verdict on (key, machine), and a fresh lease when valid. Reads only.
    `key_hash` is the key's lookup hash when the caller has it already."""
    now = time.time()
    known = await find_known(pool, cache, key_hash or keyformat.lookup_hash(req.key))
    code, activation = judge(known, fingerprint_hash(req.fingerprint), req.activation_id, now)
    return verdict(signer, known, code, activation, req.fingerprint, req.nonce, now)


def verdict(
    signer: Signer,
    known: Known | None,
    code: Code,
    activation: UUID | None,
    fingerprint: str,
    nonce: str | None,
    now: float,
    seat_until: float | None = None,
) -> dict[str, Any]:
    """The answer to a read (validate, heartbeat): a fresh lease when valid, bounded by the
    machine's floating seat (`seat_until`, else the one the cache knows)."""
    if code is Code.VALID:
        assert known is not None
        if known.floating and seat_until is None:
            seat_until = known.seats.get(fingerprint_hash(fingerprint))
        lease = sign_lease(signer, known, fingerprint, int(now), seat_until)
        extra = timing(known, now, seat_until)
        return answer(code, now, nonce, known, activation_id=str(activation), **lease, **extra)
    # constant work: a fast "no" would tell which keys exist
    signer.jws(decoy_claims(int(now), fingerprint))
    return answer(code, now, nonce, known)


async def heartbeat(
    pool: asyncpg.Pool,
    cache: LicenseCache,
    signer: Signer,
    heartbeats: Heartbeats,
    req: HeartbeatRequest,
    key_hash: bytes,
) -> dict[str, Any]:
    """The machine still runs: validate's verdict, from memory, and the heartbeat recorded
    (in memory too; written in the next batch), renewing a floating seat it holds."""
    now = time.time()
    known = await find_known(pool, cache, key_hash)
    code, activation = judge(known, fingerprint_hash(req.fingerprint), None, now)
    seat_until = None
    if activation is not None:
        assert known is not None
        if code is Code.VALID and known.floating:
            seat_until = now + seat_seconds(known)
        heartbeats.record(activation, now, seat_until)
    return verdict(signer, known, code, activation, req.fingerprint, req.nonce, now, seat_until)


@dataclass(frozen=True)
class Outcome:
    code: Code
    locked: Locked | None
    activation_id: UUID | None = None
    seat_until: float | None = None


async def _activate_on(
    conn: asyncpg.Connection, locked: Locked, req: ActivateRequest, fp_hash: str, now: float
) -> Outcome:
    row = locked.license
    tenant = row.tenant
    code = standing(row, now)
    if code is not None:
        return Outcome(code, locked)
    activation_id = await queries.find_activation(conn, tenant, row.id, fp_hash)
    if activation_id is None:
        # Floating: activations are not limited, seats are (below).
        if not row.floating and (
            await queries.count_activations(conn, tenant, row.id) >= row.max_machines
        ):
            return Outcome(Code.TOO_MANY_ACTIVATIONS, locked)
        activation_id = await _add_activation(conn, row, req, fp_hash)
    if not row.floating:
        return Outcome(Code.VALID, locked, activation_id)
    # The license row is locked: no other check-out of this license counts meanwhile, so
    # at most max_machines seats are ever held at once.
    until = await queries.take_seat(
        conn, row.id, activation_id, row.max_machines, seat_seconds(row)
    )
    if until is None:
        return Outcome(Code.NO_FREE_SEAT, locked, activation_id)
    return Outcome(Code.VALID, locked, activation_id, until)


async def _add_activation(
    conn: asyncpg.Connection, row: License, req: ActivateRequest, fp_hash: str
) -> UUID:
    tenant = row.tenant
    activation_id = new_event_id()
    await queries.insert_activation(
        conn,
        tenant,
        activation_id=activation_id,
        license_id=row.id,
        fingerprint_hash=fp_hash,
        machine_name=req.machine_name,
        platform=req.platform,
        app_version=req.app_version,
    )
    await outbox.add(
        conn,
        MachineActivated(
            activation_id=activation_id,
            license_id=row.id,
            account_id=row.account_id,
            fingerprint_hash=fp_hash,
            machine_name=req.machine_name,
            platform=req.platform,
            seller_id=tenant.seller_id,
            mode=tenant.mode,
        ),
    )
    return activation_id


async def _activate_for_account(
    conn: asyncpg.Connection,
    tenant: Tenant,
    account_id: UUID,
    req: ActivateRequest,
    fp_hash: str,
    now: float,
) -> Outcome:
    rows = await queries.lock_of_account(conn, tenant, account_id, req.product)
    if not rows:
        return Outcome(Code.NO_LICENSE, None)
    # The same machine signing in again lands on the activation it already holds.
    for row in rows:
        if await queries.find_activation(conn, tenant, row.license.id, fp_hash) is not None:
            return await _activate_on(conn, row, req, fp_hash, now)
    first: Outcome | None = None
    for row in rows:
        outcome = await _activate_on(conn, row, req, fp_hash, now)
        if outcome.code is Code.VALID:
            return outcome
        first = first or outcome
    assert first is not None
    return first


async def activate(
    pool: asyncpg.Pool,
    cache: LicenseCache,
    signer: Signer,
    sealer: Sealer,
    req: ActivateRequest,
    owner: tuple[Tenant, UUID] | None,
) -> dict[str, Any]:
    """Bind the machine to a seat (the same fingerprint again: the same seat). Publishes
    MachineActivated for a new seat; answers TOO_MANY_ACTIVATIONS when none is free.
    With a key, the key finds the license (and so its tenant); without, `owner` is the
    signed-in customer's tenant and account."""
    now = time.time()
    fp_hash = fingerprint_hash(req.fingerprint)
    async with pool.acquire() as conn, conn.transaction():
        if req.key is not None:
            found = await queries.lock_by_key(conn, keyformat.lookup_hash(req.key))
            outcome = (
                Outcome(Code.NOT_FOUND, None)
                if found is None
                else await _activate_on(conn, found, req, fp_hash, now)
            )
        else:
            assert owner is not None
            tenant, account_id = owner
            outcome = await _activate_for_account(conn, tenant, account_id, req, fp_hash, now)
    locked = outcome.locked
    if locked is None:
        return answer(outcome.code, now, req.nonce)
    cache.forget(str(locked.license.id))  # read-your-writes here; NOTIFY tells the others
    row = locked.license
    if outcome.code is not Code.VALID:
        return answer(outcome.code, now, req.nonce, row)
    extra: dict[str, Any] = sign_lease(signer, row, req.fingerprint, int(now), outcome.seat_until)
    extra.update(timing(row, now, outcome.seat_until))
    extra["activation_id"] = str(outcome.activation_id)
    if req.key is None:
        extra["license_key"] = keyformat.display(sealer.open(locked.key_sealed).decode())
    return answer(outcome.code, now, req.nonce, row, **extra)


async def deactivate(
    pool: asyncpg.Pool, cache: LicenseCache, req: DeactivateRequest
) -> dict[str, Any]:
    """Free the machine's seat; publishes MachineDeactivated."""
    body = await _deactivate(pool, req)
    if body["license"] is not None:
        cache.forget(body["license"]["id"])  # read-your-writes here; NOTIFY tells the others
    return body


async def _deactivate(pool: asyncpg.Pool, req: DeactivateRequest) -> dict[str, Any]:
    now = time.time()
    fp_hash = fingerprint_hash(req.fingerprint)
    async with pool.acquire() as conn, conn.transaction():
        locked = await queries.lock_by_key(conn, keyformat.lookup_hash(req.key))
        if locked is None:
            return answer(Code.NOT_FOUND, now, req.nonce)
        row = locked.license
        activation_id = await queries.delete_activation(conn, row.tenant, row.id, fp_hash)
        if activation_id is None:
            return answer(Code.NOT_ACTIVATED, now, req.nonce, row)
        await outbox.add(
            conn,
            MachineDeactivated(
                activation_id=activation_id,
                license_id=row.id,
                account_id=row.account_id,
                fingerprint_hash=fp_hash,
                by="desktop",
                seller_id=row.tenant.seller_id,
                mode=row.tenant.mode,
            ),
        )
    return answer(Code.DEACTIVATED, now, req.nonce, row, activation_id=str(activation_id))


async def checkin(pool: asyncpg.Pool, cache: LicenseCache, req: CheckinRequest) -> dict[str, Any]:
    """Give the machine's floating seat back (on exit); the activation stays."""
    now = time.time()
    async with pool.acquire() as conn:
        found = await queries.lookup(conn, keyformat.lookup_hash(req.key))
        if found is None:
            return answer(Code.NOT_FOUND, now, req.nonce)
        activation_id = await queries.release_seat(
            conn, found.id, fingerprint_hash(req.fingerprint)
        )
    if activation_id is None:
        return answer(Code.NOT_ACTIVATED, now, req.nonce, found)
    cache.forget(str(found.id))  # read-your-writes here; NOTIFY tells the others
    return answer(Code.CHECKED_IN, now, req.nonce, found, activation_id=str(activation_id))
