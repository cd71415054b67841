-- depends: licensing_0008_seller_grants

-- What a customer's subscriptions entitle them to (docs/licensing.md, "Entitlements"), from
-- billing's `billing.subscription.*.v1`. Keyed by tenant, account and product, with one row
-- per subscription of that product: a late event of an old subscription can then never
-- overwrite a newer one's. Each row keeps the highest `sequence` billing gave it.
CREATE TABLE entitlements (
    seller_id             uuid        NOT NULL,
    mode                  text        NOT NULL CHECK (mode IN ('test', 'live')),
    account_id            uuid        NOT NULL,
    product               text        NOT NULL,
    subscription_id       text        NOT NULL,
    tier                  text        NOT NULL,
    grants                jsonb       NOT NULL,
    "interval"            text        NOT NULL,
    status                text        NOT NULL,
    current_period_start  timestamptz NOT NULL,
    current_period_end    timestamptz NOT NULL,
    cancel_at_period_end  boolean     NOT NULL,
    trial_end             timestamptz,
    grace_until           timestamptz,
    ended                 boolean     NOT NULL,
    started_at            timestamptz NOT NULL,
    sequence              integer     NOT NULL,
    updated_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (seller_id, mode, account_id, product, subscription_id)
);
