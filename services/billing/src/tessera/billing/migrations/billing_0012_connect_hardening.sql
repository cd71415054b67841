-- depends: billing_0011_sync_lease_owner

-- Connect hardening (docs/billing.md, "Connect"): a connection is committed only when the
-- seller confirms it; a connected account's events that come before its connection wait.
SET LOCAL lock_timeout = '5s';

-- An authorization Stripe's OAuth callback brought back (the code is exchanged there: it
-- is short-lived and single-use), waiting for the seller to confirm it with its own
-- credential. Whoever completed Stripe's page with the seller's link made it, which is why
-- it is not the seller's connection until the seller says so.
CREATE TABLE stripe_connect_pending (
    id             uuid        PRIMARY KEY,
    seller_id      uuid        NOT NULL,
    mode           text        NOT NULL CHECK (mode IN ('test', 'live')),
    account_id     text        NOT NULL CHECK (account_id ~ '^acct_[A-Za-z0-9]{1,250}$'),
    livemode       boolean     NOT NULL,
    scope          text,
    -- when Stripe authorized the platform on the account (the code's exchange)
    authorized_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at     timestamptz NOT NULL,
    CHECK (livemode = (mode = 'live'))
);
CREATE INDEX stripe_connect_pending_tenant ON stripe_connect_pending (seller_id, mode, expires_at);

-- When the connected account authorized the platform (its pending authorization's time; a
-- connection made before this migration: NULL, read as `connected_at`). Events Stripe made
-- from then on are the connection's.
ALTER TABLE stripe_connections ADD COLUMN authorized_at timestamptz;

-- A connected account's event that came while no seller had the account connected waits
-- (`held`, hold_key 'awaiting-connection', under the home seller in the event's mode) for
-- a connection of that account and mode; found by account when one commits.
CREATE INDEX stripe_events_awaiting_connection ON stripe_events (stripe_account, mode, received_at)
    WHERE status = 'held' AND hold_key = 'awaiting-connection';
