-- depends: kernel_0001_outbox_inbox

CREATE TABLE accounts (
    id          uuid        PRIMARY KEY,
    email       text        NOT NULL,
    source      text        NOT NULL CHECK (source IN ('purchase', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT accounts_email_normalised CHECK (email = lower(btrim(email)))
);

CREATE UNIQUE INDEX accounts_email ON accounts (email);
