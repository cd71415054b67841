"""Usage verbs: record (exactly, durably, within the limit), check, read, revert, and the
seller's assignment of a tier without a subscription (docs/usage.md).

Postgres is the truth: a record is committed before it is answered, by a conditional upsert
that raises the customer's counter only while it stays within the limit and writes the
record row under a unique idempotency key (one statement below the first threshold, else
one transaction that also announces the thresholds reached). Redis holds only the per-minute rate (the kernel's `SyncedLimiter`,
decided in memory), so nothing counted depends on it."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from uuid import UUID

import asyncpg

from tessera.licensing.entitlements.queries import customer_known
from tessera.licensing.usage import queries
from tessera.licensing.usage.meters import Meter, meters
from tessera.licensing.usage.schemas import (
    CheckOut,
    CustomerUsageOut,
    PlanIn,
    PlanOut,
    RecordOut,
    RecordRequest,
    RevertOut,
    UsageOut,
)
from tessera.shared import outbox
from tessera.shared.events.licensing import UsageThresholdReached
from tessera.shared.http.problems import NotFound, Problem, RateLimited
from tessera.shared.sellers import Tenant
from tessera.shared.synced_limits import Rule, SyncedLimiter


class UsageLimitExceeded(Problem):
    status = 403
    slug = "usage-limit-exceeded"
    title = "Usage limit exceeded"


class FeatureNotEntitled(Problem):
    status = 403
    slug = "feature-not-entitled"
    title = "No tier of this customer meters this feature"


class IdempotencyKeyReused(Problem):
    status = 409
    slug = "idempotency-key-reused"
    title = "This idempotency key was used for another record"


RATE_POLICY = "rate_per_minute"


@lru_cache(maxsize=1024)
def rate_rule(per_minute: int) -> Rule:
    """One rule per distinct rate: a counter remembers the rule it was made with, so a tier
    change to another rate starts a fresh minute rather than inheriting the old budget."""
    return Rule(f"usage-rate-{per_minute}", per_minute, 60.0)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks, for whom: the tenant, the customer, and the limiter of the rate."""

    tenant: Tenant
    customer: UUID
    limiter: SyncedLimiter
    upgrade_url: str | None
    # The seller's `usage_thresholds` (percents of a limit), ascending.
    thresholds: tuple[int, ...] = (80, 100)
    # Whose idempotency keys these are: the seller's secret keys share one space; a
    # customer's access token has its own, so a customer cannot take (and so block, or
    # have reverted) a key the seller's server will use for another customer.
    key_scope: str = ""

    def scoped(self, idempotency_key: str) -> str:
        return self.key_scope + idempotency_key

    @property
    def rate_ident(self) -> str:
        return f"{self.tenant.seller_id}:{self.tenant.mode}:{self.customer}"

    def rate_standing(self, meter: Meter) -> tuple[int, int] | None:
        """(calls left this minute, seconds until the window frees) under the tier's rate."""
        if meter.rate_per_minute is None:
            return None
        return self.limiter.standing(rate_rule(meter.rate_per_minute), self.rate_ident)


def ratelimit_headers(
    meters_used: list[tuple[Meter, int]],
    rate: tuple[Meter, tuple[int, int] | None] | None,
    now: datetime,
) -> dict[str, str]:
    """The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers): one policy per
    limited feature (named by the feature; `w` its period in seconds) and one for the
    tier's rate (`rate_per_minute`, w=60). An unlimited quota has no policy."""
    policies: list[str] = []
    states: list[str] = []
    for meter, used in meters_used:
        if meter.limit is None:
            continue
        reset = max(0, math.ceil((meter.period_end - now).total_seconds()))
        policies.append(f'"{meter.feature}";q={meter.limit};w={meter.period_seconds}')
        states.append(f'"{meter.feature}";r={max(0, meter.limit - used)};t={reset}')
    if rate is not None and rate[1] is not None and rate[0].rate_per_minute is not None:
        left, reset = rate[1]
        policies.append(f'"{RATE_POLICY}";q={rate[0].rate_per_minute};w=60')
        states.append(f'"{RATE_POLICY}";r={left};t={reset}')
    if not policies:
        return {}
    return {"RateLimit-Policy": ", ".join(policies), "RateLimit": ", ".join(states)}


def _usage(customer: UUID, meter: Meter, used: int) -> dict[str, object]:
    return {
        "customer": customer, "feature": meter.feature, "tier": meter.tier,
        "source": meter.source, "used": used, "limit": meter.limit,
        "remaining": None if meter.limit is None else max(0, meter.limit - used),
        "period_start": meter.period_start, "period_end": meter.period_end,
        "rate_per_minute": meter.rate_per_minute,
    }  # fmt: skip


async def _meter(conn: asyncpg.Connection, caller: Caller, feature: str, now: datetime) -> Meter:
    """The feature's meter now; 404 for a customer the tenant does not have, 403
    `feature-not-entitled` when none of the customer's valid tiers meters it."""
    found = meters(await queries.grants_of(conn, caller.tenant, caller.customer), now)
    meter = found.get(feature)
    if meter is not None:
        return meter
    if not await customer_known(conn, caller.tenant, caller.customer):
        raise NotFound("No such customer.")
    raise FeatureNotEntitled(
        f"No valid tier of this customer meters {feature!r}.", upgrade_url=caller.upgrade_url
    )


def _over_limit(caller: Caller, meter: Meter, used: int, now: datetime) -> UsageLimitExceeded:
    headers = ratelimit_headers([(meter, used)], (meter, caller.rate_standing(meter)), now)
    return UsageLimitExceeded(
        f"This customer's {meter.feature} limit for the period is reached; nothing was counted.",
        headers=headers, code=UsageLimitExceeded.slug, upgrade_url=caller.upgrade_url,
        **UsageOut(**_usage(caller.customer, meter, used)).model_dump(mode="json"),
    )  # fmt: skip


class _Refused(Exception):
    """Rolls back a record's transaction: over the limit, or its key was used already."""


async def record(
    pool: asyncpg.Pool,
    caller: Caller,
    body: RecordRequest,
    now: datetime,
    *,
    give_back: bool = False,
) -> tuple[RecordOut, dict[str, str]]:
    """Count `amount` within the limit, once per idempotency key. With `give_back` (the
    fast path, which hands refusals to the full stack to render), a record refused over the
    limit takes its hit of the rate back, so the full stack's own attempt counts it once."""
    async with pool.acquire() as conn:
        meter = await _meter(conn, caller, body.feature, now)
        rate = _hit_rate(caller, meter)
        if rate is not None and not (decision := caller.limiter.hit(rate)).allowed:
            used = await queries.used(
                conn, caller.tenant, caller.customer, meter.feature, meter.period_start
            )
            raise _rate_limited(caller, meter, used, decision.retry_after, now)
        record_id = uuid.uuid4()
        used_after = await _count(conn, caller, meter, body, record_id, now)
        if used_after is not None:
            out = RecordOut(
                **_usage(caller.customer, meter, used_after), record_id=record_id,
                amount=body.amount, replayed=False, reverted=False,
            )  # fmt: skip
            return out, ratelimit_headers(
                [(meter, used_after)], (meter, caller.rate_standing(meter)), now
            )
        # Refused: either the key counted before (replay its answer) or over the limit.
        held = await queries.record_by_key(conn, caller.tenant, caller.scoped(body.idempotency_key))
        if held is not None:
            if rate is not None:
                caller.limiter.undo(rate)  # a retry is not another call
            return _replay(caller, meter, held, body, now)
        if give_back and rate is not None:
            caller.limiter.undo(rate)
        used = await queries.used(
            conn, caller.tenant, caller.customer, meter.feature, meter.period_start
        )
        raise _over_limit(caller, meter, used, now)


def _hit_rate(caller: Caller, meter: Meter) -> tuple[Rule, str] | None:
    """What a record counts against the tier's rate; None without one."""
    if meter.rate_per_minute is None:
        return None
    return rate_rule(meter.rate_per_minute), caller.rate_ident


async def _count(
    conn: asyncpg.Connection,
    caller: Caller,
    meter: Meter,
    body: RecordRequest,
    record_id: UUID,
    now: datetime,
) -> int | None:
    """The counter raised within the limit and the record written under its key, atomically:
    one statement when the total stays below the first threshold, else one transaction
    that also announces the thresholds reached. The counter's new total; None (nothing
    written) when over the limit or when the key was used already."""
    if meter.limit is not None and body.amount > meter.limit:
        return None  # cannot fit even in an empty period
    try:
        quick = await _count_quick(conn, caller, meter, body, record_id, now)
    except asyncpg.UniqueViolationError:
        return None  # the key counted before: the caller replays its answer
    if quick is not None:
        return quick
    try:
        async with conn.transaction():
            used_after, counted = await queries.count(
                conn, caller.tenant, caller.customer, meter.feature,
                (meter.period_start, meter.period_end), body.amount, meter.limit, record_id,
                caller.scoped(body.idempotency_key), now,
            )  # fmt: skip
            if used_after is None or counted is None:
                raise _Refused
            await _announce_thresholds(conn, caller, meter, used_after, now)
            return used_after
    except _Refused:
        return None


def quick_ceiling(thresholds: tuple[int, ...], limit: int | None) -> int | None:
    """The highest total a record may leave through the one-statement path: the limit, and
    below the first threshold (reaching one is announced in the full transaction). None:
    no bound (unlimited)."""
    if not limit:
        return limit  # unlimited (None), or 0: nothing fits
    first = min(((t * limit + 99) // 100 for t in thresholds), default=limit + 1)
    return min(limit, first - 1)


async def _count_quick(
    conn: asyncpg.Connection,
    caller: Caller,
    meter: Meter,
    body: RecordRequest,
    record_id: UUID,
    now: datetime,
) -> int | None:
    """The common case, below the first threshold: one statement, committed on its own (one
    round trip instead of three). None: not counted this way (the full transaction decides)."""
    ceiling = quick_ceiling(caller.thresholds, meter.limit)
    if ceiling is not None and body.amount > ceiling:
        return None
    return await queries.count_quick(
        conn, caller.tenant, caller.customer, meter.feature,
        (meter.period_start, meter.period_end), body.amount, meter.limit, ceiling, record_id,
        caller.scoped(body.idempotency_key), now,
    )  # fmt: skip


def reached(thresholds: tuple[int, ...], used: int, limit: int | None) -> list[int]:
    """The thresholds (percents) a count has reached under a limit."""
    if not limit:
        return []  # unlimited, or a limit of 0 that no record can reach
    return [t for t in thresholds if used * 100 >= t * limit]


async def _announce_thresholds(
    conn: asyncpg.Connection, caller: Caller, meter: Meter, used: int, now: datetime
) -> None:
    """In the record's transaction: an event for each threshold reached for the first time
    this period. "Reached", not "crossed by this record", so a downgrade that leaves the
    count past a threshold announces it with the next record."""
    shares = reached(caller.thresholds, used, meter.limit)
    if not shares:
        return
    tenant, limit = caller.tenant, meter.limit
    assert limit is not None  # `reached` is empty without a limit
    first = await queries.first_reached(
        conn, tenant, caller.customer, meter.feature, meter.period_start, shares, now
    )
    for threshold in first:
        event = UsageThresholdReached(
            seller_id=tenant.seller_id, mode=tenant.mode, account_id=caller.customer,
            feature=meter.feature, threshold=threshold, used=used, limit=limit,
            tier=meter.tier, period_start=meter.period_start, period_end=meter.period_end,
        )  # fmt: skip
        await outbox.add(conn, event)


def _rate_limited(
    caller: Caller, meter: Meter, used: int, retry_after: int, now: datetime
) -> RateLimited:
    refused = RateLimited(retry_after, "This customer's calls per minute are used up.")
    refused.headers.update(
        ratelimit_headers([(meter, used)], (meter, caller.rate_standing(meter)), now)
    )
    return refused


def _replay(
    caller: Caller, meter: Meter, held: asyncpg.Record, body: RecordRequest, now: datetime
) -> tuple[RecordOut, dict[str, str]]:
    if (held["account_id"], held["feature"], held["amount"]) != (
        caller.customer,
        body.feature,
        body.amount,
    ):
        raise IdempotencyKeyReused(
            "A record with this idempotency key has another customer, feature or amount."
        )
    limit = held["limit_at"]
    out = RecordOut(
        customer=caller.customer, feature=held["feature"], tier=meter.tier, source=meter.source,
        used=held["used_after"], limit=limit,
        remaining=None if limit is None else max(0, limit - held["used_after"]),
        period_start=held["period_start"], period_end=held["period_end"],
        rate_per_minute=meter.rate_per_minute, record_id=held["id"], amount=held["amount"],
        replayed=True, reverted=held["reverted_at"] is not None,
    )  # fmt: skip
    return out, ratelimit_headers(
        [(meter, held["used_after"])], (meter, caller.rate_standing(meter)), now
    )


async def check(
    pool: asyncpg.Pool, caller: Caller, feature: str, amount: int, now: datetime
) -> tuple[CheckOut, dict[str, str]]:
    """Whether `amount` would be within the limit now; counts nothing, the rate included."""
    async with pool.acquire() as conn:
        meter = await _meter(conn, caller, feature, now)
        used = await queries.used(conn, caller.tenant, caller.customer, feature, meter.period_start)
    allowed = meter.limit is None or used + amount <= meter.limit
    headers = ratelimit_headers([(meter, used)], (meter, caller.rate_standing(meter)), now)
    return CheckOut(**_usage(caller.customer, meter, used), allowed=allowed), headers


async def of_customer(
    pool: asyncpg.Pool, caller: Caller, now: datetime
) -> tuple[CustomerUsageOut, dict[str, str]]:
    """Every metered feature of the customer, with its current period's count."""
    async with pool.acquire() as conn:
        found = meters(await queries.grants_of(conn, caller.tenant, caller.customer), now)
        if not found and not await customer_known(conn, caller.tenant, caller.customer):
            raise NotFound("No such customer.")
        periods = {feature: meter.period_start for feature, meter in found.items()}
        used = await queries.used_by_feature(conn, caller.tenant, caller.customer, periods)
    pairs = [(found[f], used.get(f, 0)) for f in sorted(found)]
    out = CustomerUsageOut(
        customer=caller.customer,
        features=[UsageOut(**_usage(caller.customer, m, n)) for m, n in pairs],
    )
    # One rate per customer: the tiers' rates are the same meter's in all but odd cases.
    rated = next((m for m, _ in pairs if m.rate_per_minute is not None), None)
    rate = (rated, caller.rate_standing(rated)) if rated is not None else None
    return out, ratelimit_headers(pairs, rate, now)


async def revert(
    pool: asyncpg.Pool,
    tenant: Tenant,
    now: datetime,
    *,
    record_id: UUID | None = None,
    idempotency_key: str | None = None,
) -> RevertOut:
    """Take a record's amount back off its period's counter, once: a second revert changes
    nothing and answers the same."""
    async with pool.acquire() as conn, conn.transaction():
        if record_id is None:
            assert idempotency_key is not None
            found = await queries.record_by_key(conn, tenant, idempotency_key)
        else:
            found = await queries.record_by_id(conn, tenant, record_id)
        if found is None:
            raise NotFound("No such usage record.")
        # Locks in the order a record takes them, its counter first, then the record row
        # (a retry of the same key waits on the row's insert): never a deadlock between them.
        await queries.lock_counter(
            conn, tenant, found["account_id"], found["feature"], found["period_start"]
        )
        held = await queries.record_by_id(conn, tenant, found["id"], lock=True)
        assert held is not None  # records are never deleted
        if held["reverted_at"] is None:
            held = await queries.mark_reverted(conn, tenant, held["id"], now)
            assert held is not None  # the row is locked: nobody reverted it meanwhile
            await queries.uncount(conn, tenant, held)
        used = await queries.used(
            conn, tenant, held["account_id"], held["feature"], held["period_start"]
        )
    return RevertOut(
        record_id=held["id"], customer=held["account_id"], feature=held["feature"],
        amount=held["amount"], period_start=held["period_start"],
        period_end=held["period_end"], reverted_at=held["reverted_at"], used=used,
    )  # fmt: skip


async def assign_plan(
    pool: asyncpg.Pool, tenant: Tenant, customer: UUID, plan: PlanIn, now: datetime
) -> PlanOut:
    """The seller's own tier for a customer (a free tier), metered per UTC calendar month.
    Assigning again replaces it; the month's counts stay (docs/usage.md)."""
    async with pool.acquire() as conn, conn.transaction():
        if not await customer_known(conn, tenant, customer):
            raise NotFound("No such customer.")
        await queries.assign_plan(
            conn, tenant, customer, plan.tier, plan.grants.model_dump_json(), now
        )
    return PlanOut(tier=plan.tier, grants=plan.grants, customer=customer, assigned_at=now)


async def remove_plan(pool: asyncpg.Pool, tenant: Tenant, customer: UUID) -> None:
    async with pool.acquire() as conn:
        if not await queries.remove_plan(conn, tenant, customer):
            raise NotFound("This customer has no assigned tier.")
