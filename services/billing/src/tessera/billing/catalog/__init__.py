"""The catalog: SKU -> Stripe price and what it grants (product, license policy, seats).
Owns the `catalog` table, seeded from `deploy/catalog.json`."""
