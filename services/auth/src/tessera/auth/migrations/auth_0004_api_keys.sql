-- depends: auth_0003_sellers

-- Sellers' API keys (docs/sellers.md#api-keys). Only the SHA-256 of a key is kept; the
-- key itself is shown once, at creation. Keys are made in pairs (a publishable and a
-- secret key sharing `pair_id`, name and mode); `version` grows with every change and is
-- the `ApiKeyChanged` record's, so a replica's KeyBook keeps the newest.
CREATE TABLE api_keys (
    id              uuid        PRIMARY KEY,
    seller_id       uuid        NOT NULL REFERENCES sellers (id),
    mode            text        NOT NULL CHECK (mode IN ('test', 'live')),
    kind            text        NOT NULL CHECK (kind IN ('publishable', 'secret')),
    pair_id         uuid        NOT NULL,
    name            text        NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    key_hash        bytea       NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    display_prefix  text        NOT NULL,
    last4           text        NOT NULL CHECK (length(last4) = 4),
    status          text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    not_after       timestamptz,
    version         integer     NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by      uuid        REFERENCES users (id),
    last_used_at    timestamptz,
    UNIQUE (pair_id, kind)
);
CREATE INDEX api_keys_seller ON api_keys (seller_id, created_at DESC, id);
