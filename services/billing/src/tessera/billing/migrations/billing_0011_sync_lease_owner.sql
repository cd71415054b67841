-- depends: billing_0010_accounts_from_auth

-- Which claim holds a `stripe_sync` row's lease. A batch is claimed at once and its rows are
-- called one after another; a row whose lease ran out before its turn may have been claimed
-- by another replica, and only the holder may renew the lease and call Stripe for it.
ALTER TABLE stripe_sync ADD COLUMN leased_by uuid;
