"""Entitlement bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from tessera.shared.events.billing import SubscriptionGrants


class EntitlementOut(BaseModel):
    """A customer's entitlement to a product: its subscription's tier and grants, and
    whether it is valid now (docs/licensing.md, "Entitlements")."""

    product: str
    valid: bool
    tier: str
    grants: SubscriptionGrants
    interval: str
    status: str
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    trial_end: datetime | None
    grace_until: datetime | None
    ended: bool
    subscription_id: str
