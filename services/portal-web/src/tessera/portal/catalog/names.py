"""Display names for SKUs, products and plans, from billing's public catalog.

Customers see "ChartGPT — lifetime license", never `chartgpt-lifetime`. The catalog is read
at most every `CATALOG_SECONDS` per process; when billing cannot be reached the last names
known are kept, and with none a readable fallback is made from the slug (so a page never
fails because of a name).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from tessera.portal.upstream.base import Caller, UpstreamError
from tessera.portal.upstream.billing import BillingClient, CatalogItem, fetch_catalog

log = logging.getLogger("tessera.portal.catalog")
CATALOG_SECONDS = 300.0
RETRY_SECONDS = 30.0


def from_slug(slug: str) -> str:
    """`chartgpt-lifetime` -> `Chartgpt lifetime`: better than a slug, used only when the
    catalog does not know it."""
    words = slug.replace("_", " ").replace("-", " ").replace(".", " ").split()
    return " ".join(words).capitalize() if words else slug


@dataclass
class Names:
    """One process's view of the catalog's names."""

    product_name: str  # the configured product name, for the product the portal is about
    items: list[CatalogItem] = field(default_factory=list)
    fetched_at: float = float("-inf")

    async def refresh(self, billing: BillingClient, caller: Caller) -> Names:
        if time.monotonic() - self.fetched_at < CATALOG_SECONDS:
            return self
        try:
            self.items = await fetch_catalog(billing, caller)
        except (UpstreamError, ValueError) as error:  # down, or an answer of another shape
            log.warning("portal.catalog.unavailable", extra={"error": type(error).__name__})
            # Keep what is known, and ask again sooner than a full period.
            self.fetched_at = time.monotonic() - CATALOG_SECONDS + RETRY_SECONDS
            return self
        self.fetched_at = time.monotonic()
        return self

    def sku(self, sku: str) -> str:
        found = next((i for i in self.items if i.sku == sku), None)
        return found.name if found else from_slug(sku)

    def plan(self, policy: str) -> str:
        """A license policy's name: the name of the SKU that sells it (active first)."""
        selling = sorted((i for i in self.items if i.policy == policy), key=lambda i: not i.active)
        return selling[0].name if selling else from_slug(policy)

    def product(self, product: str) -> str:
        if product.lower() == self.product_name.lower():
            return self.product_name
        return from_slug(product)
