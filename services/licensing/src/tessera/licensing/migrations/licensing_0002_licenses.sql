-- depends: licensing_0001_customers

-- What licensing sells: products (entitlements) and the policies that license them.
CREATE TABLE products (
    code          text        PRIMARY KEY,
    name          text        NOT NULL,
    -- Feature codes a license of this product unlocks, e.g. chartgpt.core.
    entitlements  text[]      NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE policies (
    code                text        PRIMARY KEY,
    product_code        text        NOT NULL REFERENCES products (code),
    -- Machines one license may be activated on at a time.
    max_machines        integer     NOT NULL CHECK (max_machines >= 1),
    -- NULL: licenses never expire (lifetime); otherwise their term from issue.
    duration_seconds    bigint      CHECK (duration_seconds IS NULL OR duration_seconds > 0),
    -- How long a lease lets the app run without calling home (soft: renew after this) ...
    lease_seconds       integer     NOT NULL CHECK (lease_seconds > 0),
    -- ... and how much longer it may run, warning, before the lease hard-expires.
    grace_seconds       integer     NOT NULL CHECK (grace_seconds >= 0),
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- ChartGPT, sold by billing's SKU `chartgpt-lifetime` (product chartgpt, policy
-- chartgpt-lifetime, one seat per unit). See docs/licensing.md.
INSERT INTO products (code, name, entitlements)
VALUES ('chartgpt', 'ChartGPT', ARRAY['chartgpt.core']);
INSERT INTO policies (code, product_code, max_machines, duration_seconds, lease_seconds, grace_seconds)
VALUES ('chartgpt-lifetime', 'chartgpt', 3, NULL, 14 * 86400, 3 * 86400);

-- What billing told us about each order; events may arrive in any order, so the facts are
-- kept and a license's status is derived from them whenever one arrives.
CREATE TABLE orders (
    order_id       uuid        PRIMARY KEY,
    account_id     uuid        NOT NULL,
    paid_at        timestamptz,
    refunded_at    timestamptz,
    -- An OrderPaid whose product or policy licensing does not know: kept, never lost.
    held_reason    text,
    held_event     jsonb,
    updated_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX orders_held ON orders (updated_at) WHERE held_reason IS NOT NULL;

CREATE TABLE order_disputes (
    order_id    uuid        NOT NULL,
    dispute_id  text        NOT NULL,
    opened_at   timestamptz,
    outcome     text        CHECK (outcome IN ('won', 'lost')),
    PRIMARY KEY (order_id, dispute_id)
);

CREATE TABLE licenses (
    id             uuid        PRIMARY KEY,
    -- sha256 of the normalised key: the only lookup path; the key itself is sealed
    -- (SecretBox) so its owner can be shown it again.
    key_hash       bytea       NOT NULL UNIQUE,
    key_sealed     bytea       NOT NULL,
    key_hint       text        NOT NULL,
    account_id     uuid        NOT NULL,
    email          text        NOT NULL,
    product_code   text        NOT NULL REFERENCES products (code),
    policy_code    text        NOT NULL REFERENCES policies (code),
    order_id       uuid,
    seat           integer     NOT NULL DEFAULT 1,
    source         text        NOT NULL CHECK (source IN ('purchase', 'admin', 'complimentary')),
    status         text        NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    status_reason  text,
    expires_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- One license per seat of an order: a redelivered OrderPaid cannot issue twice.
    UNIQUE (order_id, seat)
);
CREATE INDEX licenses_account ON licenses (account_id, created_at);
CREATE INDEX licenses_email ON licenses (lower(email));

CREATE TABLE activations (
    id                uuid        PRIMARY KEY,
    license_id        uuid        NOT NULL REFERENCES licenses (id) ON DELETE CASCADE,
    fingerprint_hash  text        NOT NULL,
    machine_name      text,
    platform          text,
    app_version       text,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The same machine activating again is the same activation, never a second seat.
    UNIQUE (license_id, fingerprint_hash)
);

-- Lease-signing keys. The private half is sealed with settings' key-encryption key.
CREATE TABLE signing_keys (
    kid             text        PRIMARY KEY,
    public_key      bytea       NOT NULL,
    private_sealed  bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    retired_at      timestamptz,
    -- A retired key stays in the JWKS until every lease it signed has expired.
    publish_until   timestamptz
);
-- At most one key signs at a time.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((true)) WHERE retired_at IS NULL;

CREATE TABLE audit_log (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_id    uuid,
    actor_role  text        NOT NULL,
    action      text        NOT NULL,
    license_id  uuid,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_license ON audit_log (license_id, at);
