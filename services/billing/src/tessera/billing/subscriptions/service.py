"""Subscription verbs: apply Stripe's events to a subscription (log, fold, publish), start a
checkout in subscription mode, and ask Stripe for a change through the seller API.

Local state changes only from Stripe's events: a seller's cancel, resume or upgrade is a
request to Stripe (with an idempotency key), and the `customer.subscription.updated` it
causes is what changes the row, through the same fold as everything else."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from tessera.billing.accounts.service import find_or_create_account
from tessera.billing.catalog import queries as catalog
from tessera.billing.catalog.schemas import Interval
from tessera.billing.catalog.service import UnknownTier
from tessera.billing.settings import BillingSettings
from tessera.billing.stripe import gateway, return_urls
from tessera.billing.stripe.accounts import Accounts, StripeAccount
from tessera.billing.stripe.fees import platform_fee_for
from tessera.billing.stripe.gateway import CheckoutLink
from tessera.billing.stripe.return_urls import ReturnUrls
from tessera.billing.subscriptions import queries
from tessera.billing.subscriptions.schemas import ChangeRequest
from tessera.billing.subscriptions.state import FINAL, Folded, Logged, fold
from tessera.shared import outbox
from tessera.shared.events.auth import SellerSettings
from tessera.shared.events.billing import (
    SubscriptionChanged,
    SubscriptionEnded,
    SubscriptionEvent,
    SubscriptionGrants,
    SubscriptionRenewed,
    SubscriptionStarted,
)
from tessera.shared.http.problems import NotFound, Problem
from tessera.shared.sellers import HOME_LIVE, Tenant

# The seller's `past_due_grace_days` (from the SellerBook), by tenant.
GraceDays = Callable[[Tenant], int]


def default_grace(tenant: Tenant) -> int:
    """The default of the setting, for a caller with no SellerBook at hand."""
    return SellerSettings().past_due_grace_days


class NotOurs(Exception):
    """The event is about a subscription billing cannot take for this tenant."""


class NotConnected(Problem):
    status = 409
    slug = "not-connected"
    title = "No Stripe account is connected for this seller"


class PriceNotInStripe(Problem):
    status = 409
    slug = "price-not-in-stripe"
    title = "The tier's price is not in Stripe yet"


class UnknownSubscription(NotFound):
    slug = "unknown-subscription"
    title = "No such subscription"


class SubscriptionOver(Problem):
    status = 409
    slug = "subscription-ended"
    title = "The subscription has ended"


# The metadata key of a platform plan's subscription naming the seller who pays for it.
PLATFORM_FOR = "tessera_platform_for"


def metadata_for(
    tenant: Tenant, tier: str, interval: Interval, account: StripeAccount
) -> dict[str, str]:
    """What a subscription carries so its events map back to the tenant, tier and account."""
    return {
        "tessera_seller": str(tenant.seller_id),
        "tessera_mode": tenant.mode,
        "tessera_tier": tier,
        "tessera_interval": interval,
        "tessera_account": account.account or "platform",
    }


def check_metadata(tenant: Tenant, metadata: dict[str, Any] | None) -> None:
    """A subscription Tessera's checkout made names its tenant: one naming another is never
    applied here (one made elsewhere, say in Stripe's dashboard, names none)."""
    seller = (metadata or {}).get("tessera_seller")
    mode = (metadata or {}).get("tessera_mode")
    if seller is not None and (seller != str(tenant.seller_id) or mode != tenant.mode):
        raise NotOurs("the subscription's metadata names another seller or mode")


def platform_for(tenant: Tenant, metadata: dict[str, str] | None) -> UUID | None:
    """The seller a platform plan is for: named by the metadata of a subscription in the
    home seller's live tenant only (docs/sellers.md, "Platform plan")."""
    named = (metadata or {}).get(PLATFORM_FOR)
    if named is None or tenant != HOME_LIVE:
        return None
    try:
        return UUID(named)
    except ValueError:
        return None


# ---------------------------------------------------------------- Stripe's events in


async def apply_event(
    conn: asyncpg.Connection,
    tenant: Tenant,
    subscription_id: str,
    event: Logged,
    grace_days: GraceDays,
    stripe_account: str | None = None,
) -> str:
    """Log a subscription or invoice event and bring the subscription to the fold of its log.
    `stripe_account`: the connected account the verified delivery came from (None: the
    platform's), never the subscription's metadata, which its seller may edit."""
    if event.type.startswith("customer.subscription."):
        check_metadata(tenant, event.snapshot.get("metadata"))
    await queries.ensure(conn, tenant, subscription_id, stripe_account)
    await queries.log_event(conn, tenant, subscription_id, event)
    return await refresh(conn, tenant, subscription_id, grace_days)


async def link_checkout(
    conn: asyncpg.Connection,
    tenant: Tenant,
    session: dict[str, Any],
    subscription_id: str,
    grace_days: GraceDays,
    stripe_account: str | None = None,
) -> str:
    """A completed checkout in subscription mode names the buyer: their account (made if
    new, `billing.account.created.v1` in this transaction) becomes the subscription's."""
    check_metadata(tenant, session.get("metadata"))
    details = session.get("customer_details") or {}
    email = details.get("email") or session.get("customer_email")
    if not email:
        raise NotOurs("the session carries no customer email")
    customer = session.get("customer")
    customer_id = customer.get("id") if isinstance(customer, dict) else customer
    await queries.ensure(conn, tenant, subscription_id, stripe_account)
    account = await find_or_create_account(conn, tenant, email, "purchase")
    await queries.set_account(conn, tenant, subscription_id, account.id, email, customer_id)
    if isinstance(session.get("id"), str):
        await queries.set_checkout_session(conn, tenant, subscription_id, session["id"])
    return await refresh(conn, tenant, subscription_id, grace_days)


async def refresh(
    conn: asyncpg.Connection, tenant: Tenant, subscription_id: str, grace_days: GraceDays
) -> str:
    """Fold the log into the row, then publish what changed since the last event billing
    published about it (if its customer and tier are known)."""
    row = await queries.ensure(conn, tenant, subscription_id, None)
    state = fold(await queries.logged(conn, tenant, subscription_id))
    if state.status is None:
        return "waiting for the subscription's own events"
    account_id: UUID | None = row["account_id"]
    if account_id is None and state.customer:
        known = await queries.account_of_customer(conn, tenant, state.customer)
        if known is not None:
            account_id = known[0]
            await queries.set_account(conn, tenant, subscription_id, known[0], known[1], None)
    tier, product, interval = await _tier_of(conn, tenant, state)
    values = _columns(state, tier, product, interval)
    await queries.save_state(conn, tenant, subscription_id, values)
    if account_id is None:
        return f"{state.status}; waiting for its checkout to name the customer"
    if tier is None or product is None or interval is None:
        return f"{state.status}; its price is no tier of this seller's"
    found = await catalog.find_tier(conn, tenant, tier)
    if found is None:
        return f"{state.status}; tier {tier!r} is not in the catalog"
    grants = SubscriptionGrants.model_validate(found.grants.model_dump())
    return await _publish(
        conn, tenant, row, account_id, values, product, grants, grace_days(tenant),
        platform_for(tenant, state.metadata),
    )  # fmt: skip


async def _tier_of(
    conn: asyncpg.Connection, tenant: Tenant, state: Folded
) -> tuple[str | None, str | None, str | None]:
    """The tier paid for: by the Stripe price (the catalog's), else the metadata's."""
    if state.price_id:
        price = await catalog.by_stripe_price(conn, tenant, state.price_id)
        if price is not None and price.tier is not None:
            return price.tier, price.product, price.interval
    meta = state.metadata or {}
    tier = meta.get("tessera_tier")
    if tier is None:
        return None, None, state.interval
    found = await catalog.find_tier(conn, tenant, tier)
    return tier, found.product if found else None, state.interval or meta.get("tessera_interval")


def _columns(
    state: Folded, tier: str | None, product: str | None, interval: str | None
) -> dict[str, Any]:
    at = queries.at
    return {
        "stripe_customer_id": state.customer,
        "item_id": state.item_id,
        "price_id": state.price_id,
        "product": product,
        "tier": tier,
        "interval": interval if interval in ("month", "year") else None,
        "status": state.status,
        "current_period_start": at(state.period_start),
        "current_period_end": at(state.period_end),
        "cancel_at_period_end": state.cancel_at_period_end,
        "trial_end": at(state.trial_end),
        "past_due_since": at(state.past_due_since),
        "started_at": at(state.started_at),
        "ended_at": at(state.ended_at),
    }


async def _publish(
    conn: asyncpg.Connection,
    tenant: Tenant,
    row: asyncpg.Record,
    account_id: UUID,
    values: dict[str, Any],
    product: str,
    grants: SubscriptionGrants,
    grace_days: int,
    paying_seller: UUID | None,
) -> str:
    since: datetime | None = values["past_due_since"]
    grace = since + timedelta(days=grace_days) if since and values["status"] == "past_due" else None
    state = {
        "subscription_id": row["id"], "account_id": account_id, "product": product,
        "tier": values["tier"], "grants": grants, "interval": values["interval"],
        "status": values["status"],
        "current_period_start": values["current_period_start"] or values["started_at"],
        "current_period_end": values["current_period_end"] or values["started_at"],
        "cancel_at_period_end": values["cancel_at_period_end"], "trial_end": values["trial_end"],
        "past_due_since": since, "grace_until": grace,
        "started_at": values["started_at"] or datetime.now(UTC),
        "stripe_account": row["stripe_account"], "stripe_customer_id": values["stripe_customer_id"],
        "seller_id": tenant.seller_id, "mode": tenant.mode, "platform_for": paying_seller,
    }  # fmt: skip
    probe = SubscriptionChanged(sequence=1, **state)
    now = probe.model_dump(mode="json", exclude={"event_id", "occurred_at", "sequence"})
    before = row["published"]
    previous: dict[str, Any] | None = None if before is None else _json(before)
    kind = _kind(previous, now)
    if kind is None:
        return f"{values['status']}; nothing new to announce"
    sequence = row["sequence"] + 1
    event = kind(sequence=sequence, **state)
    await outbox.add(conn, event)
    await queries.set_published(conn, tenant, row["id"], _dump(now), sequence)
    return f"{values['status']}; {event.subject} #{sequence}"


def _kind(previous: dict[str, Any] | None, now: dict[str, Any]) -> type[SubscriptionEvent] | None:
    """Which event tells consumers how `now` differs from what they were last told."""
    if previous is None:
        return SubscriptionEnded if now["status"] in FINAL else SubscriptionStarted
    if previous == now or previous["status"] in FINAL:
        return None  # nothing new, or already ended (ended is final)
    if now["status"] in FINAL:
        return SubscriptionEnded
    if (
        now["current_period_start"] > previous["current_period_start"]
        and now["tier"] == previous["tier"]
    ):
        return SubscriptionRenewed
    return SubscriptionChanged


def _json(value: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(value) if isinstance(value, str | bytes) else value
    return loaded


def _dump(value: dict[str, Any]) -> str:
    return orjson.dumps(value).decode()


# ---------------------------------------------------------------- checkout


async def stripe_account(pool: asyncpg.Pool, accounts: Accounts, tenant: Tenant) -> StripeAccount:
    """The tenant's Stripe account, or 409 `not-connected`."""
    async with pool.acquire() as conn:
        account = await accounts.account_for(conn, tenant)
    if isinstance(account, StripeAccount):
        return account
    if account == "local":
        raise NotConnected(
            "No Stripe key is configured: subscriptions need Stripe (or its stand-in)."
        )
    raise NotConnected("Connect a Stripe account before selling subscriptions.")


async def start_checkout(
    pool: asyncpg.Pool,
    accounts: Accounts,
    settings: BillingSettings,
    tenant: Tenant,
    tier_code: str,
    interval: Interval,
    email: str | None,
    paying_seller: UUID | None = None,
    return_to: ReturnUrls | None = None,
) -> CheckoutLink:
    """A Checkout Session in subscription mode for the tier's current price (a platform
    plan's names the seller who pays, `paying_seller`); the buyer returns to `return_to`
    (the defaults: the portal's success page, the site)."""
    account = await stripe_account(pool, accounts, tenant)
    async with pool.acquire() as conn:
        tier = await catalog.find_tier(conn, tenant, tier_code)
        if tier is None or not tier.active:
            raise UnknownTier(f"No tier {tier_code!r} is for sale.")
        price = await catalog.current_tier_price(conn, tenant, tier_code, interval)
    if price is None or not price.active:
        raise UnknownTier(f"Tier {tier_code!r} has no {interval}ly price.")
    if price.stripe_price_id is None:
        raise PriceNotInStripe("The tier's price is still being synced to Stripe; try again soon.")
    metadata = metadata_for(tenant, tier_code, interval, account)
    if paying_seller is not None:
        metadata[PLATFORM_FOR] = str(paying_seller)
    return_to = return_to or return_urls.defaults(settings)
    subscription_data: dict[str, object] = {"metadata": metadata}
    if tier.trial_days:
        subscription_data["trial_period_days"] = tier.trial_days
    fee = platform_fee_for(settings, tenant)
    if account.account is not None and fee > 0:
        # A connected seller's subscription pays the platform its share of every invoice.
        subscription_data["application_fee_percent"] = str(fee)
    params: dict[str, object] = {
        "line_items": [{"price": price.stripe_price_id, "quantity": 1}],
        "metadata": metadata,
        "subscription_data": subscription_data,
        "success_url": return_to.success_url,
        "cancel_url": return_to.cancel_url,
    }
    if email:
        customer = await gateway.find_customer(account, email)
        params["customer" if customer else "customer_email"] = customer or email
    return await gateway.create_subscription_checkout(account, params, f"checkout-{uuid.uuid4()}")


# ---------------------------------------------------------------- the seller API


async def get(pool: asyncpg.Pool, tenant: Tenant, subscription_id: str) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await queries.find(conn, tenant, subscription_id)
    if row is None:
        raise UnknownSubscription("No such subscription.")
    return row


async def of_customer(pool: asyncpg.Pool, tenant: Tenant, account_id: UUID) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await queries.of_account(conn, tenant, account_id)


def _key(tenant: Tenant, subscription_id: str, action: str, idempotency_key: str | None) -> str:
    return f"tessera-sub-{tenant.seller_id}-{tenant.mode}-{subscription_id}-{action}-{idempotency_key or uuid.uuid4()}"


async def _its_account(
    pool: asyncpg.Pool, accounts: Accounts, tenant: Tenant, row: asyncpg.Record
) -> StripeAccount:
    """The Stripe account the subscription lives on, which must be the tenant's account now:
    after the seller connected another one, the old account is out of reach (409)."""
    account = await stripe_account(pool, accounts, tenant)
    if row["stripe_account"] != account.account:
        raise NotConnected(
            "The subscription is on a Stripe account this seller no longer has connected."
        )
    return account


async def _live(pool: asyncpg.Pool, tenant: Tenant, subscription_id: str) -> asyncpg.Record:
    row = await get(pool, tenant, subscription_id)
    if row["status"] in FINAL:
        raise SubscriptionOver("A canceled subscription cannot be changed; start a new one.")
    return row


async def cancel(
    pool: asyncpg.Pool, accounts: Accounts, tenant: Tenant, subscription_id: str,
    at_period_end: bool, idempotency_key: str | None,
) -> asyncpg.Record:  # fmt: skip
    """Ask Stripe to cancel at the period's end (resumable until then) or now."""
    row = await _live(pool, tenant, subscription_id)
    account = await _its_account(pool, accounts, tenant, row)
    key = _key(tenant, subscription_id, f"cancel-{at_period_end}", idempotency_key)
    if at_period_end:
        await gateway.update_subscription(
            account, subscription_id, {"cancel_at_period_end": True}, key
        )
    else:
        await gateway.cancel_subscription(account, subscription_id, key)
    return row


async def resume(
    pool: asyncpg.Pool, accounts: Accounts, tenant: Tenant, subscription_id: str,
    idempotency_key: str | None,
) -> asyncpg.Record:  # fmt: skip
    """Take back a cancellation at the period's end."""
    row = await _live(pool, tenant, subscription_id)
    account = await _its_account(pool, accounts, tenant, row)
    key = _key(tenant, subscription_id, "resume", idempotency_key)
    await gateway.update_subscription(
        account, subscription_id, {"cancel_at_period_end": False}, key
    )
    return row


async def change(
    pool: asyncpg.Pool, accounts: Accounts, tenant: Tenant, subscription_id: str,
    body: ChangeRequest, idempotency_key: str | None,
) -> asyncpg.Record:  # fmt: skip
    """Move to another tier or interval at its current price; Stripe prorates."""
    row = await _live(pool, tenant, subscription_id)
    account = await _its_account(pool, accounts, tenant, row)
    tier = body.tier or row["tier"]
    interval = body.interval or row["interval"]
    if tier is None or interval is None or row["item_id"] is None:
        raise UnknownSubscription("The subscription's tier is not known yet; try again soon.")
    async with pool.acquire() as conn:
        found = await catalog.find_tier(conn, tenant, tier)
        price = await catalog.current_tier_price(conn, tenant, tier, interval)
    if found is None or not found.active or price is None or not price.active:
        raise UnknownTier(f"No tier {tier!r} is for sale with a {interval}ly price.")
    if found.product != row["product"]:
        raise UnknownTier(f"Tier {tier!r} is another product's.")
    if price.stripe_price_id is None:
        raise PriceNotInStripe("The tier's price is still being synced to Stripe; try again soon.")
    params: dict[str, object] = {
        "items": [{"id": row["item_id"], "price": price.stripe_price_id}],
        "proration_behavior": "create_prorations",
        "metadata": {"tessera_tier": tier, "tessera_interval": interval},
    }
    key = _key(tenant, subscription_id, f"change-{tier}-{interval}", idempotency_key)
    await gateway.update_subscription(account, subscription_id, params, key)
    return row


async def portal(
    pool: asyncpg.Pool, accounts: Accounts, tenant: Tenant, account_id: UUID, return_url: str
) -> str | None:
    """A Customer Portal session for the customer's Stripe customer (None: no subscription)."""
    rows = await of_customer(pool, tenant, account_id)
    customer = next((r["stripe_customer_id"] for r in rows if r["stripe_customer_id"]), None)
    if customer is None:
        return None
    return await gateway.create_portal(
        await stripe_account(pool, accounts, tenant), customer, return_url
    )
