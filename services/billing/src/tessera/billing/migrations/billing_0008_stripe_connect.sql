-- depends: billing_0007_products_tiers

-- Stripe Connect (docs/billing.md, "Connect"): each tenant (a seller in a mode) may connect
-- one Stripe account; the OAuth `state` a connection is started with; and the connected
-- account each recorded Stripe event came from.
SET LOCAL lock_timeout = '5s';

-- One row per tenant: its connected account now, or the one it had (`disconnected`).
-- A test-mode tenant connects through the platform's test key (Stripe's `livemode` false),
-- a live one through its live key; the CHECK holds the two together.
CREATE TABLE stripe_connections (
    seller_id        uuid        NOT NULL,
    mode             text        NOT NULL CHECK (mode IN ('test', 'live')),
    account_id       text        NOT NULL CHECK (account_id ~ '^acct_[A-Za-z0-9]{1,250}$'),
    livemode         boolean     NOT NULL,
    status           text        NOT NULL CHECK (status IN ('connected', 'disconnected')),
    scope            text,
    connected_at     timestamptz NOT NULL,
    disconnected_at  timestamptz,
    -- who ended it: the seller (DELETE /v1/stripe/connection) or Stripe
    -- (`account.application.deauthorized`: the seller removed the platform in Stripe)
    disconnected_by  text        CHECK (disconnected_by IN ('seller', 'stripe')),
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (seller_id, mode),
    CHECK (livemode = (mode = 'live'))
);
-- An account's events name the account only: it may be connected to one seller per mode,
-- or its events could not say whose they are.
CREATE UNIQUE INDEX stripe_connections_account ON stripe_connections (account_id, mode)
    WHERE status = 'connected';

-- A started connection: the hash of the `state` sent through Stripe's OAuth page, bound to
-- the tenant that started it, used once (the callback deletes it) before `expires_at`.
CREATE TABLE stripe_connect_states (
    state_hash  bytea       PRIMARY KEY,
    seller_id   uuid        NOT NULL,
    mode        text        NOT NULL CHECK (mode IN ('test', 'live')),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX stripe_connect_states_tenant ON stripe_connect_states (seller_id, mode, expires_at);

-- The connected account an event came from (its `account`); NULL: the platform's own.
ALTER TABLE stripe_events ADD COLUMN stripe_account text;
