"""The catalog's Stripe sync: claims due `stripe_sync` rows and makes their objects so in
Stripe (calls.py), then records the outcome.

A row is leased while its call is in flight (claim pushes `next_attempt_at` back), not
locked: a seller's edit must not wait for Stripe. The object is read with its version in
one snapshot, and the outcome is recorded against that version only: an edit made during
the call leaves the row `pending` for the next round. A failure is `failed` with the
error, retried after an exponential backoff (capped at an hour), forever: the row stays
put, so a Stripe outage loses nothing."""

from __future__ import annotations

import dataclasses
import logging

import asyncpg
import stripe

from tessera.billing.catalog import queries as catalog
from tessera.billing.catalog import sync_queries as queries
from tessera.billing.catalog.sync_queries import Due
from tessera.billing.stripe import connections
from tessera.billing.stripe.accounts import Accounts, StripeAccount
from tessera.billing.stripe_sync import calls
from tessera.shared.db.notified import NotifiedLoop

log = logging.getLogger("tessera.billing.stripe_sync")

NOTIFY_CHANNEL = "billing_stripe_sync"
MAX_BACKOFF = 3600.0


class CatalogSync:
    def __init__(
        self,
        pool: asyncpg.Pool,
        accounts: Accounts,
        *,
        batch_size: int = 20,
        lease_seconds: float = 60.0,
        retry_seconds: float = 5.0,
        poll_interval: float = 1.0,
    ) -> None:
        self.pool = pool
        self.accounts = accounts
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.retry_seconds = retry_seconds
        self.queued_local = False
        self.loop = NotifiedLoop(
            pool, NOTIFY_CHANNEL, self.sync_batch, name="billing.stripe_sync",
            poll_interval=poll_interval,
        )  # fmt: skip

    async def run(self) -> None:
        await self.loop.run()

    def backoff(self, attempts: int) -> float:
        return min(self.retry_seconds * float(2 ** min(attempts, 20)), MAX_BACKOFF)

    async def sync_batch(self) -> bool:
        """One round; True when it filled a batch (more may be due)."""
        if not self.queued_local:
            await self.queue_local()
        async with self.pool.acquire() as conn, conn.transaction():
            due = await queries.claim(conn, self.batch_size, self.lease_seconds)
        for row in due:
            await self.sync_one(row)
        return len(due) >= self.batch_size

    async def queue_local(self) -> None:
        """What was written while no key was configured takes the state it would take
        now: pending for the tenant the key serves, awaiting_connect for the others."""
        async with self.pool.acquire() as conn, conn.transaction():
            for tenant in await queries.tenants_in(conn, "local"):
                state = await self.accounts.initial_state(conn, tenant)
                if state != "local":
                    await queries.requeue(conn, tenant, "local", state)
        self.queued_local = True

    async def sync_one(self, due: Due) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            # Under the tenant's connection lock: a (dis)connection committing meanwhile
            # sees this row's state after we set it (connect/service.py).
            await connections.lock_tenant(conn, due.tenant, shared=True)
            # The batch's lease was taken for all its rows at once: this row's runs from
            # now, unless it ran out and another replica has the row (it calls, not us).
            if not await queries.renew_lease(conn, due, self.lease_seconds):
                log.info(
                    "billing.stripe_sync.lease_lost",
                    extra={"object": f"{due.object_type}:{due.object_key}"},
                )
                return
            account = await self.accounts.account_for(conn, due.tenant)
            if not isinstance(account, StripeAccount):
                # Its seller disconnected since: it waits with the tenant's other rows.
                await queries.finish(conn, due, account)
                return
        try:
            if due.object_type == "product":
                await self.sync_product(account, due)
            else:
                await self.sync_price(account, due)
        except stripe.StripeError as error:
            message = f"{type(error).__name__}: {error.user_message or error}"
            log.warning(
                "billing.stripe_sync.failed",
                extra={"object": f"{due.object_type}:{due.object_key}", "error": message},
            )
            async with self.pool.acquire() as conn:
                await queries.failed(conn, due, message, self.backoff(due.attempts))

    async def still_on(self, conn: asyncpg.Connection, due: Due, account: StripeAccount) -> bool:
        """Whether the tenant is still on the account just called (under its connection
        lock); if it connected another meanwhile, the ids made on the old one are dropped
        and the row is tried again soon, on the new one."""
        await connections.lock_tenant(conn, due.tenant, shared=True)
        now = await self.accounts.account_for(conn, due.tenant)
        if isinstance(now, StripeAccount) and now.account == account.account:
            return True
        await queries.defer(conn, due, 0)
        return False

    async def sync_product(self, account: StripeAccount, due: Due) -> None:
        async with self.pool.acquire() as conn:
            found = await catalog.product_for_sync(conn, due.tenant, due.object_key)
        if found is None:  # cannot happen (products are never deleted); not retried
            return
        version, product = found
        due = dataclasses.replace(due, version=version)
        key = calls.idempotency_key(due.tenant, "product", product.code, version, account)
        stripe_id = await calls.put_product(account, due.tenant, product, key)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await self.still_on(conn, due, account):
                return
            await catalog.set_stripe_product(conn, due.tenant, product.code, stripe_id)
            await queries.finish(conn, due, "synced")

    async def sync_price(self, account: StripeAccount, due: Due) -> None:
        async with self.pool.acquire() as conn:
            found = await catalog.price_for_sync(conn, due.tenant, due.object_key)
        if found is None:
            return
        version, price, stripe_product, nickname = found
        if stripe_product is None:
            # Its product is not in Stripe yet (it goes first, but may have failed).
            async with self.pool.acquire() as conn:
                await queries.defer(conn, due, self.retry_seconds)
            return
        due = dataclasses.replace(due, version=version)
        key = calls.idempotency_key(due.tenant, "price", price.id, version, account)
        stripe_id = await calls.put_price(account, due.tenant, price, stripe_product, nickname, key)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await self.still_on(conn, due, account):
                return
            if stripe_id is not None and price.stripe_price_id is None:
                await catalog.set_stripe_price_id(conn, due.tenant, price.id, stripe_id)
                if price.sku is not None:
                    # Checkout sells the SKU at this price from now on.
                    await catalog.set_stripe_price(conn, due.tenant, price.sku, price.id, stripe_id)
            await queries.finish(conn, due, "synced")
