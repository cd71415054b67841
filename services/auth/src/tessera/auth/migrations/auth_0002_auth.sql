-- depends: auth_0001_users

ALTER TABLE users ADD COLUMN disabled_at timestamptz;

-- Token-signing keys. The private key is AES-256-GCM encrypted (nonce || ciphertext, the
-- kid as associated data) under TESSERA_AUTH_KEY_ENCRYPTION_KEY; only the public half is
-- ever served. `retired_at` set: no longer signs, still published until its tokens expire.
CREATE TABLE signing_keys (
    kid                    text        PRIMARY KEY,
    private_key_encrypted  bytea       NOT NULL,
    public_key             bytea       NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    retired_at             timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE retired_at IS NULL;

-- Mail waiting to be sent. The payload holds no secret: a mail that carries a sign-in link
-- mints its link when it is sent (so a retry carries a fresh, live link).
CREATE TABLE email_outbox (
    id               uuid        PRIMARY KEY,
    kind             text        NOT NULL,
    recipient        text        NOT NULL,
    payload          jsonb       NOT NULL DEFAULT '{}',
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'sent', 'dropped', 'rejected')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    locked_until     timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at          timestamptz
);
CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at) WHERE status = 'pending';

-- Devices (browser binding cookies, hashed) a user has signed in from.
CREATE TABLE known_devices (
    user_id      uuid        NOT NULL REFERENCES users (id),
    device_hash  text        NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_seen    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (user_id, device_hash)
);

CREATE TABLE audit_events (
    id           uuid        PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    action       text        NOT NULL,
    actor_id     uuid,
    user_id      uuid,
    ip           text,
    detail       jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON audit_events (at DESC, id DESC);
CREATE INDEX audit_events_user ON audit_events (user_id, at DESC);

-- Sign-in looks addresses up case-insensitively.
CREATE INDEX users_email_lower ON users (lower(email));
