"""The webhook ingress's outcomes, as an OpenTelemetry counter (see tessera.shared.metrics)."""

from __future__ import annotations

from opentelemetry import metrics

WEBHOOK_DELIVERIES = metrics.get_meter("tessera.billing").create_counter(
    "tessera.webhook.deliveries",
    unit="{delivery}",
    description="Stripe deliveries by outcome: received (stored, to be applied), duplicate, "
    "ignored (a type billing does not act on), rejected (with the problem's slug as reason).",
)


WEBHOOK_APPLIED = metrics.get_meter("tessera.billing").create_counter(
    "tessera.webhook.applied",
    unit="{event}",
    description="Stripe events the applier applied, by outcome (the event's state: processed, "
    "held, failed, ...) and Stripe event type.",
)


def applied(outcome: str, event_type: str) -> None:
    WEBHOOK_APPLIED.add(1, {"outcome": outcome, "stripe.event.type": event_type})


def delivered(outcome: str, reason: str = "") -> None:
    attributes = {"outcome": outcome}
    if reason:
        attributes["reason"] = reason
    WEBHOOK_DELIVERIES.add(1, attributes)
