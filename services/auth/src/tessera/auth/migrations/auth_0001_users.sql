-- depends: kernel_0001_outbox_inbox

CREATE TABLE users (
    id          uuid        PRIMARY KEY,
    account_id  uuid        NOT NULL UNIQUE,
    email       text        NOT NULL UNIQUE,
    role        text        NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
