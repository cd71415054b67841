"""Accounts: one per buyer (normalised email), born of a purchase or an admin. Owns the
`accounts` table; publishes `billing.account.created.v1`."""
