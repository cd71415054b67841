-- depends: billing_0006_tenancy

-- A catalog per seller (docs/billing.md, "Catalog"): products, each with one-time prices
-- (the `catalog` rows, a SKU each, as checkout and orders know them) and recurring tiers;
-- every Stripe price ever made, so a subscription keeps the price it was sold at; and the
-- Stripe sync state of each product and price (an outbox of Stripe calls, one row per
-- object, its version bumped by every change in the change's own transaction).
--
-- Today's `catalog` rows are kept as they are; each names its product (`catalog.product`,
-- the product its license grants), which becomes a row of `products` here, and its price a
-- row of `prices`. One transaction: all of it or none.
SET LOCAL lock_timeout = '5s';

CREATE TABLE products (
    seller_id          uuid        NOT NULL,
    mode               text        NOT NULL CHECK (mode IN ('test', 'live')),
    code               text        NOT NULL,
    name               text        NOT NULL,
    description        text        NOT NULL DEFAULT '',
    active             boolean     NOT NULL DEFAULT true,
    stripe_product_id  text,
    created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (seller_id, mode, code)
);

CREATE TABLE tiers (
    seller_id    uuid        NOT NULL,
    mode         text        NOT NULL CHECK (mode IN ('test', 'live')),
    code         text        NOT NULL,
    product      text        NOT NULL,
    name         text        NOT NULL,
    description  text        NOT NULL DEFAULT '',
    trial_days   integer     NOT NULL DEFAULT 0 CHECK (trial_days >= 0),
    -- {"features": [...], "quotas": {"api_calls": {"limit": 500}}, "rate_per_minute": n|null,
    --  "seats": n}: validated by billing (catalog/schemas.py, Grants).
    grants       jsonb       NOT NULL,
    active       boolean     NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (seller_id, mode, code),
    FOREIGN KEY (seller_id, mode, product) REFERENCES products (seller_id, mode, code)
);
CREATE INDEX tiers_product ON tiers (seller_id, mode, product);

-- Every price, one-time (of a SKU) or recurring (of a tier, per interval). A price's amount
-- never changes: a new amount is a new row, and the old one is `current = false` (Stripe
-- prices are immutable; the old one is archived there, and subscriptions on it keep it).
CREATE TABLE prices (
    id               uuid        NOT NULL,
    seller_id        uuid        NOT NULL,
    mode             text        NOT NULL CHECK (mode IN ('test', 'live')),
    product          text        NOT NULL,
    sku              text,
    tier             text,
    "interval"       text        CHECK ("interval" IN ('month', 'year')),
    unit_amount      integer     NOT NULL CHECK (unit_amount >= 0),
    currency         text        NOT NULL CHECK (currency = lower(currency) AND length(currency) = 3),
    -- Whether it can be bought: current, and its SKU or tier active (Stripe's `active`).
    active           boolean     NOT NULL,
    current          boolean     NOT NULL DEFAULT true,
    stripe_price_id  text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    superseded_at    timestamptz,
    PRIMARY KEY (seller_id, mode, id),
    CHECK ((sku IS NOT NULL AND tier IS NULL AND "interval" IS NULL)
        OR (sku IS NULL AND tier IS NOT NULL AND "interval" IS NOT NULL)),
    CHECK (current OR NOT active),
    FOREIGN KEY (seller_id, mode, product) REFERENCES products (seller_id, mode, code),
    FOREIGN KEY (seller_id, mode, sku) REFERENCES catalog (seller_id, mode, sku),
    FOREIGN KEY (seller_id, mode, tier) REFERENCES tiers (seller_id, mode, code)
);
CREATE UNIQUE INDEX prices_current_sku ON prices (seller_id, mode, sku)
    WHERE current AND sku IS NOT NULL;
CREATE UNIQUE INDEX prices_current_tier ON prices (seller_id, mode, tier, "interval")
    WHERE current AND tier IS NOT NULL;
-- A subscription names the Stripe price it pays; the price (and its tier) is found by it.
CREATE UNIQUE INDEX prices_stripe ON prices (seller_id, mode, stripe_price_id)
    WHERE stripe_price_id IS NOT NULL;

-- One row per product or price: what Stripe should look like (`version`, bumped by every
-- change) and how far the sync got (`synced_version`, `state`). States: `local` (no Stripe
-- key configured), `awaiting_connect` (the seller's own Stripe account is not connected
-- yet), `pending`, `synced`, `failed` (retried at `next_attempt_at`, backing off).
CREATE TABLE stripe_sync (
    seller_id        uuid        NOT NULL,
    mode             text        NOT NULL CHECK (mode IN ('test', 'live')),
    object_type      text        NOT NULL CHECK (object_type IN ('product', 'price')),
    object_key       text        NOT NULL,
    version          integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
    synced_version   integer,
    state            text        NOT NULL
                         CHECK (state IN ('local', 'awaiting_connect', 'pending', 'synced', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    last_error       text,
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Set while a worker's call is in flight: no other worker takes the row until then
    -- (a change meanwhile makes it due again, but not before the call has ended).
    leased_until     timestamptz,
    synced_at        timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (seller_id, mode, object_type, object_key)
);
-- The worker's queue serves every tenant (products before prices: a price needs its
-- product's Stripe id).
CREATE INDEX stripe_sync_due ON stripe_sync (next_attempt_at, object_type)
    WHERE state IN ('pending', 'failed');

CREATE FUNCTION stripe_sync_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('billing_stripe_sync', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER stripe_sync_notify AFTER INSERT OR UPDATE OF version ON stripe_sync
    FOR EACH STATEMENT EXECUTE FUNCTION stripe_sync_notify();

-- Today's rows: a product per (tenant, catalog.product), named after its first SKU (the
-- seed renames it), active while any of its SKUs is.
INSERT INTO products (seller_id, mode, code, name, description, active)
SELECT DISTINCT ON (seller_id, mode, product)
       seller_id, mode, product, name, description,
       bool_or(active) OVER (PARTITION BY seller_id, mode, product)
FROM catalog
ORDER BY seller_id, mode, product, sku;

ALTER TABLE catalog ADD CONSTRAINT catalog_product_fkey
    FOREIGN KEY (seller_id, mode, product) REFERENCES products (seller_id, mode, code);

INSERT INTO prices (id, seller_id, mode, product, sku, unit_amount, currency, active,
                    stripe_price_id)
SELECT gen_random_uuid(), seller_id, mode, product, sku, unit_amount, currency, active,
       stripe_price_id
FROM catalog;

-- Nothing of it is in Stripe yet (a price the operator made there by hand, named in
-- `stripe_price_id`, is taken as synced). `local` until a worker with a Stripe key serves
-- the tenant: it queues them then.
INSERT INTO stripe_sync (seller_id, mode, object_type, object_key, state)
SELECT seller_id, mode, 'product', code, 'local' FROM products;
INSERT INTO stripe_sync (seller_id, mode, object_type, object_key, state, synced_version,
                         synced_at)
SELECT seller_id, mode, 'price', id::text,
       CASE WHEN stripe_price_id IS NULL THEN 'local' ELSE 'synced' END,
       CASE WHEN stripe_price_id IS NULL THEN NULL ELSE 1 END,
       CASE WHEN stripe_price_id IS NULL THEN NULL ELSE clock_timestamp() END
FROM prices;
