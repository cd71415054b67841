-- depends: licensing_0009_entitlements

-- Usage metering (docs/usage.md). Postgres is the truth: a counter per customer, metered
-- feature and period, raised only while it stays within the limit (one conditional upsert,
-- whose row lock serialises one customer's records across every replica), and one row per
-- recorded amount, unique per tenant and idempotency key, so a counter can always be
-- reconciled with its records.

-- A tier a seller assigns to a customer itself (a free tier: no subscription, no Stripe),
-- metered per calendar month in UTC. One per customer; a valid subscription granting the
-- same feature takes precedence.
CREATE TABLE usage_plans (
    seller_id    uuid        NOT NULL,
    mode         text        NOT NULL CHECK (mode IN ('test', 'live')),
    account_id   uuid        NOT NULL,
    tier         text        NOT NULL,
    grants       jsonb       NOT NULL,
    assigned_at  timestamptz NOT NULL,
    PRIMARY KEY (seller_id, mode, account_id)
);

CREATE TABLE usage_counters (
    seller_id     uuid        NOT NULL,
    mode          text        NOT NULL CHECK (mode IN ('test', 'live')),
    account_id    uuid        NOT NULL,
    feature       text        NOT NULL,
    period_start  timestamptz NOT NULL,
    period_end    timestamptz NOT NULL,
    used          bigint      NOT NULL CHECK (used >= 0),
    PRIMARY KEY (seller_id, mode, account_id, feature, period_start)
);

-- Each accepted amount, with the answer it got (replayed for its idempotency key). A
-- refused record (over the limit) writes nothing.
CREATE TABLE usage_records (
    id               uuid        PRIMARY KEY,
    seller_id        uuid        NOT NULL,
    mode             text        NOT NULL CHECK (mode IN ('test', 'live')),
    account_id       uuid        NOT NULL,
    feature          text        NOT NULL,
    period_start     timestamptz NOT NULL,
    period_end       timestamptz NOT NULL,
    amount           bigint      NOT NULL CHECK (amount > 0),
    idempotency_key  text        NOT NULL,
    used_after       bigint      NOT NULL,
    limit_at         bigint,
    recorded_at      timestamptz NOT NULL,
    reverted_at      timestamptz,
    UNIQUE (seller_id, mode, idempotency_key)
);

CREATE INDEX usage_records_counter ON usage_records
    (seller_id, mode, account_id, feature, period_start);

-- The thresholds (percent of the limit) each customer's feature reached in a period: the
-- event goes out once per row, written by the record that reached it.
CREATE TABLE usage_thresholds (
    seller_id     uuid        NOT NULL,
    mode          text        NOT NULL CHECK (mode IN ('test', 'live')),
    account_id    uuid        NOT NULL,
    feature       text        NOT NULL,
    period_start  timestamptz NOT NULL,
    threshold     integer     NOT NULL CHECK (threshold BETWEEN 1 AND 100),
    reached_at    timestamptz NOT NULL,
    PRIMARY KEY (seller_id, mode, account_id, feature, period_start, threshold)
);
