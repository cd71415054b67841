-- depends: licensing_0003_cache_notify

-- The seller's root keys: they sign the key set (the lease-signing keys a desktop app may
-- trust); the app pins their public halves at build time. A root held here is sealed like
-- the signing keys (dev and single-box deployments); an offline root is listed by its public
-- half only (`private_sealed` NULL) and signs with `tessera-licensing keys sign-set
-- --root-key FILE`.
CREATE TABLE root_keys (
    kid             text        PRIMARY KEY,
    public_key      bytea       NOT NULL,
    private_sealed  bytea,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    retired_at      timestamptz
);

-- Signed key sets, one row per (version, root) signature: the same document signed by every
-- root that was asked to sign it. /v1/public-keys publishes the rows of the highest version.
CREATE TABLE key_sets (
    version     bigint      NOT NULL CHECK (version > 0),
    root_kid    text        NOT NULL REFERENCES root_keys (kid),
    jws         text        NOT NULL,
    kids        text[]      NOT NULL,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (version, root_kid)
);
