"""Users: one per account, created from `billing.account.created.v1` (signup is closed).
Owns the `users` table; publishes `auth.user.created.v1`."""
