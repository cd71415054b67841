"""Accounts: one per buyer (normalised email), born of a purchase or an admin, or learnt
from auth (`auth.user.created.v1`). Owns the `accounts` table; publishes
`billing.account.created.v1` for the accounts it makes."""
