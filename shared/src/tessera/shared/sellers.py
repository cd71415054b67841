"""Sellers, as every service names them: the internal seller id and the two modes.

A seller's internal id (a UUID) is the stable key every seller-owned row, event and key
record carries. It never appears in a customer-facing token or URL: customers and browsers
see the seller's public slug, and each service maps the slug to the id through the seller
directory auth publishes (docs/sellers.md).

The operator's own business is the *home* seller. Its id is fixed, the same in every
service and every deployment, so each service's migration can give today's rows to it on
its own, with no coordination and no new setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from uuid import UUID

HOME_SELLER_ID = UUID("00000000-0000-4000-8000-000000000001")
# The home seller's tier sellers subscribe to for Tessera itself (the platform plan,
# docs/sellers.md): billing's checkout sells it, auth counts only subscriptions to it.
PLATFORM_TIER = "platform"

Mode = Literal["test", "live"]
MODES: tuple[Mode, ...] = ("test", "live")


@dataclass(frozen=True, slots=True)
class Tenant:
    """Whose data a request or an event may touch: one seller, in one mode. Test and live
    data never mix: a test key's tenant sees only test rows."""

    seller_id: UUID
    mode: Mode

    @property
    def is_home(self) -> bool:
        return self.seller_id == HOME_SELLER_ID


HOME_LIVE = Tenant(HOME_SELLER_ID, "live")
