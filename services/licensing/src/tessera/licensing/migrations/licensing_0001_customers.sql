-- depends: kernel_0001_outbox_inbox

-- The accounts licensing knows of (from billing.account.created.v1); licenses hang off them.
CREATE TABLE customers (
    account_id  uuid        PRIMARY KEY,
    email       text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
