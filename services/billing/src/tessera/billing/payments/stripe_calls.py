"""The worker's reads from Stripe, through the official library, on the account the
payment lives on: which charge paid it, and the balance transactions of that charge and
its refunds (Stripe's fees). Reads only: nothing here changes Stripe, so no idempotency
keys are needed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe

from tessera.billing.payments.queries import BalanceEntry, Payment
from tessera.billing.stripe.accounts import StripeAccount


class Unreachable(Exception):
    """Stripe has nothing billing can read for this payment: its fee stays unknown."""


class NotYet(Exception):
    """Stripe has not made the balance transaction yet (it may for some methods): later."""


@dataclass(frozen=True)
class Fetched:
    payment_intent: str | None
    charge: str
    entries: list[BalanceEntry]
    # How much of the charge Stripe says is refunded, and how much of that the fetched
    # refunds (with their balance transactions) cover.
    refunded: int
    refunds_fetched: int


def _options(account: StripeAccount) -> stripe.RequestOptions:
    # A connected seller's objects live on ITS account: the event's, sent as Stripe-Account.
    options: stripe.RequestOptions = {}
    if account.account is not None:
        options["stripe_account"] = account.account
    return options


def _id(value: Any) -> str | None:
    found = value.get("id") if isinstance(value, dict) else value
    return found if isinstance(found, str) and found else None


def entry(txn: dict[str, Any], object_id: str) -> BalanceEntry:
    return BalanceEntry(
        id=str(txn["id"]),
        object_id=object_id,
        type=str(txn["type"]),
        created=datetime.fromtimestamp(int(txn["created"]), UTC),
        currency=str(txn["currency"]).lower(),
        amount=int(txn["amount"]),
        fee=int(txn["fee"]),
    )


async def invoice_payment(account: StripeAccount, invoice: str) -> tuple[str | None, str | None]:
    """The payment intent (or, for an old-style payment, the charge) that paid the invoice
    (`/v1/invoice_payments`: Stripe's API since 2025 names no charge on the invoice)."""
    listed = await account.client.v1.invoice_payments.list_async(
        {"invoice": invoice, "limit": 10}, options=_options(account)
    )
    for paid in (p.to_dict() for p in listed.data):
        payment = paid.get("payment") or {}
        found = _id(payment.get("payment_intent")), _id(payment.get("charge"))
        if paid.get("status") == "paid" and found != (None, None):
            return found
    # Paid out of band, or by a payment record: no Stripe charge, so no fee to read.
    raise Unreachable(f"Stripe lists no paid charge of invoice {invoice}")


async def charge_with_balance(
    account: StripeAccount, payment_intent: str | None, charge: str | None
) -> dict[str, Any]:
    """The charge, its balance transaction expanded (as plain data)."""
    expand = {"expand": ["latest_charge.balance_transaction"]}
    if payment_intent is not None:
        intent = await account.client.v1.payment_intents.retrieve_async(
            payment_intent,
            expand,  # type: ignore[arg-type]
            options=_options(account),
        )
        found = intent.to_dict().get("latest_charge")
        if not isinstance(found, dict):
            raise NotYet(f"payment intent {payment_intent} has no charge yet")
        return found
    assert charge is not None
    retrieved = await account.client.v1.charges.retrieve_async(
        charge, {"expand": ["balance_transaction"]}, options=_options(account)
    )
    return retrieved.to_dict()


async def refunds_with_balance(
    account: StripeAccount, charge: str
) -> tuple[list[dict[str, Any]], int]:
    """The charge's refunds that have a balance transaction, and their total (a refund
    still pending has none yet: the payment stays pending until it does)."""
    listed = await account.client.v1.refunds.list_async(
        {"charge": charge, "limit": 100, "expand": ["data.balance_transaction"]},
        options=_options(account),
    )
    refunds = [r.to_dict() for r in listed.data]
    done = [r for r in refunds if isinstance(r.get("balance_transaction"), dict)]
    return done, sum(int(r["amount"]) for r in done)


async def fetch(account: StripeAccount, payment: Payment) -> Fetched:
    """What Stripe says of the payment's charge and refunds. Raises `Unreachable` (a 404 or
    a refused account: it will not get better), `NotYet`, or the library's errors."""
    try:
        intent, charge_id = payment.payment_intent_id, payment.charge_id
        if intent is None and charge_id is None:
            intent, charge_id = await invoice_payment(account, payment.source)
        charge = await charge_with_balance(account, intent, charge_id)
        txn = charge["balance_transaction"]
        if not isinstance(txn, dict):
            raise NotYet(f"charge {charge['id']} has no balance transaction yet")
        entries = [entry(txn, str(charge["id"]))]
        fetched, refunded = 0, int(charge.get("amount_refunded") or 0)
        if refunded > 0:
            refunds, fetched = await refunds_with_balance(account, str(charge["id"]))
            entries += [entry(r["balance_transaction"], str(r["id"])) for r in refunds]
    except stripe.InvalidRequestError as error:
        if error.http_status == 404:
            raise Unreachable(f"Stripe: {error.user_message or error}") from error
        raise
    except stripe.PermissionError as error:
        raise Unreachable(f"Stripe refused the account: {error.user_message or error}") from error
    return Fetched(intent, str(charge["id"]), entries, refunded, fetched)
