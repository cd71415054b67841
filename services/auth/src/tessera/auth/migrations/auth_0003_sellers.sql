-- depends: auth_0002_auth

-- Sellers (docs/sellers.md). The home seller's row is made at first start from settings
-- (its id is the fixed HOME_SELLER_ID), not here: its slug and name are the operator's.
CREATE TABLE sellers (
    id             uuid        PRIMARY KEY,
    slug           text        NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{2,39}$'),
    name           text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    signup_policy  text        NOT NULL DEFAULT 'closed' CHECK (signup_policy IN ('closed', 'open')),
    status         text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    settings       jsonb       NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    version        integer     NOT NULL DEFAULT 1
);

-- Members are home-seller users (developers); the service checks that, the table keeps
-- one role per person per seller.
CREATE TABLE seller_members (
    seller_id   uuid        NOT NULL REFERENCES sellers (id),
    user_id     uuid        NOT NULL REFERENCES users (id),
    role        text        NOT NULL CHECK (role IN ('owner', 'developer')),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (seller_id, user_id)
);
CREATE INDEX seller_members_user ON seller_members (user_id);

CREATE TABLE seller_invites (
    id           uuid        PRIMARY KEY,
    seller_id    uuid        NOT NULL REFERENCES sellers (id),
    email        text        NOT NULL,
    role         text        NOT NULL CHECK (role IN ('owner', 'developer')),
    invited_by   uuid        NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at   timestamptz NOT NULL,
    accepted_at  timestamptz,
    revoked_at   timestamptz
);
-- One open invite per address per seller: inviting again replaces nothing silently.
CREATE UNIQUE INDEX seller_invites_open ON seller_invites (seller_id, lower(email))
    WHERE accepted_at IS NULL AND revoked_at IS NULL;

-- Customers per seller and mode. ADD COLUMN with a constant default is a catalogue change
-- (no table rewrite, a brief lock): every existing row reads as the home seller's, live.
-- Dropping the default then makes an INSERT that forgets the tenant fail loudly, and the
-- rows already there keep their value.
ALTER TABLE users
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CHECK (mode IN ('test', 'live'));
ALTER TABLE users ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;
-- The same address at two sellers (or in test and live) is two customers.
ALTER TABLE users DROP CONSTRAINT users_email_key;
DROP INDEX users_email_lower;
CREATE UNIQUE INDEX users_tenant_email ON users (seller_id, mode, lower(email));

ALTER TABLE known_devices
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CHECK (mode IN ('test', 'live'));
ALTER TABLE known_devices ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;

ALTER TABLE audit_events
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CHECK (mode IN ('test', 'live'));
ALTER TABLE audit_events ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;
CREATE INDEX audit_events_tenant ON audit_events (seller_id, mode, at DESC, id DESC);

ALTER TABLE email_outbox
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CHECK (mode IN ('test', 'live'));
ALTER TABLE email_outbox ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;

-- An invite's link token (HMAC under the secret key), minted when its mail is sent (the
-- mail queue holds no secret), so a retried mail carries a fresh token.
ALTER TABLE seller_invites ADD COLUMN token_hash text UNIQUE;
