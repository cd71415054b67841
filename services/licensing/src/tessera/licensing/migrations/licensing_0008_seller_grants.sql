-- depends: licensing_0007_heartbeat_fixes

-- Licenses a seller granted with its secret key under an Idempotency-Key: a retry with the
-- same key answers the same licenses instead of granting again. Per tenant, like every
-- seller-owned row; the request's hash tells a retry from a different request reusing a key.
CREATE TABLE seller_grants (
    seller_id       uuid        NOT NULL,
    mode            text        NOT NULL CHECK (mode IN ('test', 'live')),
    idempotency_key text        NOT NULL,
    request_hash    bytea       NOT NULL,
    license_ids     uuid[]      NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (seller_id, mode, idempotency_key)
);
