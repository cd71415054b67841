-- depends: billing_0001_accounts

-- What can be bought: SKU -> Stripe price and what it grants (seeded from deploy/catalog.json).
CREATE TABLE catalog (
    sku             text        PRIMARY KEY,
    name            text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    unit_amount     integer     NOT NULL CHECK (unit_amount >= 0),
    currency        text        NOT NULL CHECK (currency = lower(currency) AND length(currency) = 3),
    stripe_price_id text,
    product         text        NOT NULL,
    policy          text        NOT NULL,
    seats_per_unit  integer     NOT NULL DEFAULT 1 CHECK (seats_per_unit >= 1),
    max_quantity    integer     NOT NULL DEFAULT 10 CHECK (max_quantity >= 1),
    active          boolean     NOT NULL DEFAULT true,
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Every Stripe event received, once, by its id, with what became of it.
CREATE TABLE stripe_events (
    id            text        PRIMARY KEY,
    type          text        NOT NULL,
    livemode      boolean     NOT NULL DEFAULT false,
    stripe_created timestamptz,
    payload       jsonb       NOT NULL,
    status        text        NOT NULL CHECK (status IN ('processed', 'ignored', 'held', 'failed')),
    -- A refund or dispute that arrived before its purchase waits under its payment intent.
    hold_key      text,
    detail        text,
    order_id      uuid,
    attempts      integer     NOT NULL DEFAULT 1,
    received_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    processed_at  timestamptz
);
CREATE INDEX stripe_events_held ON stripe_events (hold_key) WHERE status = 'held';
CREATE INDEX stripe_events_received ON stripe_events (received_at DESC);
CREATE INDEX stripe_events_status ON stripe_events (status, received_at DESC);

CREATE TABLE orders (
    id                   uuid        PRIMARY KEY,
    account_id           uuid        REFERENCES accounts (id),
    email                text        NOT NULL,
    sku                  text        NOT NULL,
    quantity             integer     NOT NULL CHECK (quantity >= 1),
    amount_total         integer     NOT NULL CHECK (amount_total >= 0),
    currency             text        NOT NULL,
    product              text        NOT NULL,
    policy               text        NOT NULL,
    seats                integer     NOT NULL CHECK (seats >= 1),
    source               text        NOT NULL CHECK (source IN ('purchase', 'admin')),
    status               text        NOT NULL CHECK (status IN
                             ('awaiting_payment', 'paid', 'payment_failed', 'refunded')),
    amount_refunded      integer     NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
    dispute_status       text        CHECK (dispute_status IN ('open', 'won', 'lost')),
    checkout_session_id  text        UNIQUE,
    payment_intent_id    text        UNIQUE,
    charge_id            text,
    customer_id          text,
    receipt_url          text,
    created_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    paid_at              timestamptz,
    provisioned_at       timestamptz
);
CREATE INDEX orders_account ON orders (account_id, created_at DESC);
CREATE INDEX orders_email ON orders (email);
CREATE INDEX orders_paid_at ON orders (paid_at) WHERE paid_at IS NOT NULL;

-- Refunds and disputes on an order, each published once the order is provisioned (its
-- account known), in the order they happened.
CREATE TABLE order_adjustments (
    id               uuid        PRIMARY KEY,
    order_id         uuid        NOT NULL REFERENCES orders (id),
    kind             text        NOT NULL CHECK (kind IN ('refund', 'dispute_opened', 'dispute_closed')),
    stripe_event_id  text        NOT NULL UNIQUE,
    amount           integer     NOT NULL DEFAULT 0,
    full_refund      boolean     NOT NULL DEFAULT false,
    dispute_id       text,
    outcome          text,
    reason           text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at     timestamptz
);
CREATE INDEX order_adjustments_unpublished ON order_adjustments (order_id, created_at)
    WHERE published_at IS NULL;

CREATE TABLE disputes (
    id          text        PRIMARY KEY,
    order_id    uuid        NOT NULL REFERENCES orders (id),
    status      text        NOT NULL CHECK (status IN ('open', 'won', 'lost')),
    reason      text,
    amount      integer     NOT NULL DEFAULT 0,
    opened_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    closed_at   timestamptz
);

-- Test checkout sessions (no Stripe key configured): the built-in stand-in's own state.
CREATE TABLE test_checkout_sessions (
    id           text        PRIMARY KEY,
    sku          text        NOT NULL REFERENCES catalog (sku),
    quantity     integer     NOT NULL,
    email        text,
    amount_total integer     NOT NULL,
    currency     text        NOT NULL,
    status       text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'complete')),
    payment_intent_id text   NOT NULL,
    charge_id    text        NOT NULL,
    customer_id  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE audit_log (
    id          bigserial   PRIMARY KEY,
    actor       text        NOT NULL,
    action      text        NOT NULL,
    subject     text,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    ip          text,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX audit_log_subject ON audit_log (subject, at DESC);
