"""Disputes: a control endpoint opens one on a charge and another decides it, as a card
network would; `/v1/disputes` reads, updates (evidence, `submit`) and closes (accepts)
them. Events `charge.dispute.created/updated/closed` and `charge.dispute.funds_withdrawn`
/`funds_reinstated`, with their balance transactions (Stripe's 15.00 dispute fee)."""

from __future__ import annotations

from tessera.devstack.stripe_standin.api import Call, Endpoint
from tessera.devstack.stripe_standin.payments import balance_entry, fee, lister, retriever
from tessera.devstack.stripe_standin.store import snapshot
from tessera.devstack.stripe_standin.wire import Obj, StripeApiError, new_id

DAY = 86400
DISPUTE_FEE = 1500
REASONS = (
    "fraudulent", "duplicate", "product_not_received", "product_unacceptable",
    "subscription_canceled", "credit_not_processed", "general", "unrecognized",
)  # fmt: skip
OPEN = ("warning_needs_response", "warning_under_review", "needs_response", "under_review")


def open_dispute(call: Call) -> Obj:
    """Control: `POST /_standin/charges/{id}/dispute` (`reason`, default `fraudulent`)."""
    account, charge = call.store.locate("charge", call.path["id"])
    located = call.at(account)
    if charge["disputed"]:
        raise StripeApiError(400, f"Charge {charge['id']} is already disputed.")
    at = located.now(charge["customer"])
    dispute: Obj = {
        "id": new_id("du_1"),
        "object": "dispute",
        "amount": charge["amount"] - charge["amount_refunded"],
        "balance_transactions": [],
        "charge": charge["id"],
        "created": at,
        "currency": charge["currency"],
        "evidence": {
            "customer_email_address": None,
            "product_description": None,
            "uncategorized_text": None,
        },
        "evidence_details": {
            "due_by": at + 7 * DAY,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "reason": call.params.choice("reason", REASONS) or "fraudulent",
        "status": "needs_response",
    }
    charge["disputed"] = True
    _move(located, dispute, -dispute["amount"], DISPUTE_FEE, at)
    located.store.add(account, dispute)
    located.store.emit(account, "charge.dispute.created", dispute, created=at)
    located.store.emit(account, "charge.dispute.funds_withdrawn", dispute, created=at)
    return dispute


def _move(call: Call, dispute: Obj, amount: int, dispute_fee: int, at: int) -> None:
    fees = (
        [fee(dispute_fee, dispute["currency"], "stripe_fee", "Dispute fee")] if dispute_fee else []
    )
    txn = balance_entry(call, dispute, amount, "dispute", fees, at)
    dispute["balance_transactions"].append(call.store.objects[txn])


def _close(call: Call, dispute: Obj, status: str) -> Obj:
    if dispute["status"] not in OPEN:
        raise StripeApiError(400, f"This dispute is already closed ({dispute['status']}).")
    at = call.now()
    before = snapshot(dispute)
    dispute["status"] = status
    if status == "won":
        _move(call, dispute, dispute["amount"], 0, at)
        call.store.emit(call.account, "charge.dispute.funds_reinstated", dispute, created=at)
    call.store.emit_update(call.account, "charge.dispute.closed", dispute, before, at)
    return dispute


def decide(call: Call) -> Obj:
    """Control: `POST /_standin/disputes/{id}/close` (`outcome` `won` or `lost`)."""
    account, dispute = call.store.locate("dispute", call.path["id"])
    outcome = call.params.choice("outcome", ("won", "lost"), required=True)
    assert outcome is not None
    return _close(call.at(account), dispute, outcome)


def update_dispute(call: Call) -> Obj:
    dispute = call.store.get(call.account, "dispute", call.path["id"])
    if dispute["status"] not in OPEN:
        raise StripeApiError(400, "A closed dispute cannot be updated.")
    before = snapshot(dispute)
    evidence = call.params.sub("evidence")
    if evidence is not None:
        for key, value in evidence.data.items():
            if isinstance(value, str):
                dispute["evidence"][key] = value or None
        dispute["evidence_details"]["has_evidence"] = True
    dispute["metadata"] = call.params.metadata(dispute["metadata"])
    # Evidence goes to the bank at once unless `submit=false` stages it (Stripe's default).
    if call.params.boolean("submit") is not False and dispute["evidence_details"]["has_evidence"]:
        dispute["status"] = "under_review"
        dispute["evidence_details"]["submission_count"] += 1
    call.store.emit_update(call.account, "charge.dispute.updated", dispute, before, call.now())
    return dispute


def accept_dispute(call: Call) -> Obj:
    """`POST /v1/disputes/{id}/close`: the merchant accepts the loss."""
    return _close(call, call.store.get(call.account, "dispute", call.path["id"]), "lost")


ENDPOINTS = [
    Endpoint("GET", "/v1/disputes", lister("dispute", "/v1/disputes", ("charge", "payment_intent")), ("charge", "payment_intent", "created")),
    Endpoint("GET", "/v1/disputes/{id}", retriever("dispute")),
    Endpoint("POST", "/v1/disputes/{id}", update_dispute, ("evidence", "metadata", "submit")),
    Endpoint("POST", "/v1/disputes/{id}/close", accept_dispute),
    Endpoint("POST", "/_standin/charges/{id}/dispute", open_dispute, api=False),
    Endpoint("POST", "/_standin/disputes/{id}/close", decide, api=False),
]  # fmt: skip
