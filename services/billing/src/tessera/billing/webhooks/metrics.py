"""The webhook ingress's outcomes, as an OpenTelemetry counter (see tessera.shared.metrics)."""

from __future__ import annotations

from opentelemetry import metrics

WEBHOOK_DELIVERIES = metrics.get_meter("tessera.billing").create_counter(
    "tessera.webhook.deliveries",
    unit="{delivery}",
    description="Stripe deliveries by outcome: received (stored, to be applied), duplicate, "
    "ignored (a type billing does not act on), rejected (with the problem's slug as reason).",
)


def delivered(outcome: str, reason: str = "") -> None:
    attributes = {"outcome": outcome}
    if reason:
        attributes["reason"] = reason
    WEBHOOK_DELIVERIES.add(1, attributes)
