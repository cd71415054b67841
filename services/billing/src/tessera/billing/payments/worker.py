"""Fetches Stripe's fees of the recorded payments (payments.py's rows are the queue): on
the account each payment lives on, the charge that paid it with its balance transaction,
and its refunds' (stripe_calls.py).

Why a worker and not the webhook: the ingress answers Stripe in milliseconds and the
applier holds a transaction per batch; a Stripe call in either would tie them to Stripe's
latency and availability. The row is written in the event's own transaction, so nothing is
lost: a Stripe outage leaves it `pending` and it is retried with a backoff (doubled per
attempt, at most an hour), forever. Only what will not get better (no key for its account,
a 404, an account that refuses the platform, or a charge still without a balance
transaction after `MAX_NOT_YET` tries) makes it `unavailable`: its fee is then unknown,
which the revenue summary says, never 0."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import asyncpg
import stripe

from tessera.billing.payments import queries, stripe_calls
from tessera.billing.payments.queries import Payment
from tessera.billing.payments.stripe_calls import NotYet, Unreachable
from tessera.billing.stripe.accounts import Accounts, StripeAccount
from tessera.billing.stripe_events import queries as events
from tessera.shared.db.notified import NotifiedLoop
from tessera.shared.sellers import Tenant

log = logging.getLogger("tessera.billing.payments")

NOTIFY_CHANNEL = "billing_payment_fees"
MAX_BACKOFF = 3600.0
MAX_NOT_YET = 8

# Applies the Stripe events held for a payment intent (webhooks/service.release_held),
# handed in by app.py: a charge event of a subscription invoice that came before billing
# knew the invoice's charge waits under its payment intent until this worker learns it.
Release = Callable[[asyncpg.Connection, Tenant, str], Awaitable[None]]


async def release_nothing(conn: asyncpg.Connection, tenant: Tenant, hold_key: str) -> None:
    return None


class FeeFetcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        accounts: Accounts,
        *,
        release: Release = release_nothing,
        batch_size: int = 20,
        lease_seconds: float = 60.0,
        retry_seconds: float = 5.0,
        poll_interval: float = 1.0,
    ) -> None:
        self.pool = pool
        self.accounts = accounts
        self.release = release
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.retry_seconds = retry_seconds
        self.loop = NotifiedLoop(
            pool, NOTIFY_CHANNEL, self.fetch_batch, name="billing.payment_fees",
            poll_interval=poll_interval,
        )  # fmt: skip

    async def run(self) -> None:
        await self.loop.run()

    def backoff(self, attempts: int) -> float:
        return min(self.retry_seconds * float(2 ** min(attempts, 20)), MAX_BACKOFF)

    async def fetch_batch(self) -> bool:
        """One round; True when it filled a batch (more may be due)."""
        async with self.pool.acquire() as conn, conn.transaction():
            due = await queries.claim(conn, self.batch_size, self.lease_seconds)
        for payment in due:
            await self.fetch_one(payment)
        return len(due) >= self.batch_size

    def account_of(self, payment: Payment) -> StripeAccount | str:
        """The account the payment's event came from (never the tenant's current one: a
        seller that connected another since still has this payment on the old), or why
        none can be reached."""
        if payment.stripe_account is None:
            if self.accounts.platform is None:
                return "no Stripe key is configured"
            return StripeAccount(self.accounts.platform)
        client = self.accounts.client_for(payment.tenant.mode)
        if client is None:
            return f"no Stripe key of {payment.tenant.mode} mode reaches connected accounts"
        return StripeAccount(client, payment.stripe_account)

    async def fetch_one(self, payment: Payment) -> None:
        account = self.account_of(payment)
        try:
            if isinstance(account, str):
                raise Unreachable(account)
            fetched = await stripe_calls.fetch(account, payment)
        except Unreachable as error:
            async with self.pool.acquire() as conn:
                await queries.unavailable(conn, payment, str(error))
            return
        except (NotYet, stripe.StripeError, ValueError, KeyError, TypeError) as error:
            # Stripe away or refusing, or an answer not understood: tried again later, so one
            # payment never holds up the others.
            message = f"{type(error).__name__}: {error}"
            log.warning(
                "billing.payment_fees.failed", extra={"payment": payment.source, "error": message}
            )
            async with self.pool.acquire() as conn:
                if isinstance(error, NotYet) and payment.attempts + 1 >= MAX_NOT_YET:
                    await queries.unavailable(conn, payment, message)
                else:
                    await queries.retry_later(
                        conn, payment, message, self.backoff(payment.attempts)
                    )
            return
        async with self.pool.acquire() as conn, conn.transaction():
            intent = fetched.payment_intent
            if intent is not None:
                # As the applier does for the intent's events: a charge event applied
                # meanwhile either sees the charge recorded or is held and released here.
                await events.lock_payment(conn, intent)
            await queries.record_fetched(
                conn, payment, intent, fetched.charge, fetched.entries,
                (fetched.refunded, fetched.refunds_fetched), self.backoff(payment.attempts),
            )  # fmt: skip
            if payment.kind == "invoice":
                await self.release(conn, payment.tenant, intent or fetched.charge)
