-- depends: kernel_0001_outbox_inbox

-- Sellers' webhook endpoints (docs/webhooks.md). Every row names its tenant (seller + mode);
-- every query filters on it, so one tenant never reads another's endpoints or events.
CREATE TABLE endpoints (
    id                       uuid        PRIMARY KEY,
    seller_id                uuid        NOT NULL,
    mode                     text        NOT NULL CHECK (mode IN ('test', 'live')),
    url                      text        NOT NULL,
    description              text        NOT NULL DEFAULT '',
    -- NULL: every event type; otherwise only these.
    event_types              text[],
    enabled                  boolean     NOT NULL DEFAULT true,
    -- Why it is off: 'seller' (turned off through the API) or 'failing' (by the worker).
    disabled_reason          text        CHECK (disabled_reason IN ('seller', 'failing')),
    -- The signing secret (`whsec_…`), sealed with the key-encryption key; the previous one
    -- still signs until previous_secret_until (a rotation's overlap).
    secret_sealed            bytea       NOT NULL,
    previous_secret_sealed   bytea,
    previous_secret_until    timestamptz,
    -- Since when every attempt failed (NULL after any success): disabled past a limit.
    failing_since            timestamptz,
    created_at               timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at               timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX endpoints_tenant ON endpoints (seller_id, mode, created_at);

-- The public events, as sent: the body is kept byte for byte, so every attempt (and a
-- replay) signs and sends the same bytes under the same webhook-id.
CREATE TABLE events (
    id           uuid        PRIMARY KEY,
    seller_id    uuid        NOT NULL,
    mode         text        NOT NULL CHECK (mode IN ('test', 'live')),
    type         text        NOT NULL,
    body         text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX events_tenant_time ON events (seller_id, mode, occurred_at);

-- The durable queue: one row per endpoint x event. The worker claims due rows with a lease
-- (locked_until), so a replica that dies mid-attempt leaves its rows to another.
CREATE TABLE deliveries (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id      uuid        NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    event_id         uuid        NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    locked_until     timestamptz,
    -- The claim holding the lease: an attempt records its outcome only if it still holds it
    -- (a replay meanwhile queues the row afresh).
    claim            uuid,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';

-- Wake every replica's worker at commit (fan-out, replay, test) instead of its next poll.
CREATE FUNCTION deliveries_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('webhooks_deliveries', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER deliveries_notify AFTER INSERT ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION deliveries_notify();

-- The delivery log: one row per attempt.
CREATE TABLE attempts (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id       bigint      NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    endpoint_id       uuid        NOT NULL,
    event_id          uuid        NOT NULL,
    attempt           integer     NOT NULL,
    attempted_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    status_code       integer,
    latency_ms        integer     NOT NULL,
    response_excerpt  text        NOT NULL DEFAULT '',
    error             text
);
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, id DESC);
