-- depends: billing_0002_catalog_orders_stripe

-- The ingress records a verified event as `received` and answers at once; billing's
-- applier applies it a moment later (webhooks/applier.py). Its trace context rides along
-- so one purchase stays one trace.
ALTER TABLE stripe_events DROP CONSTRAINT stripe_events_status_check;
ALTER TABLE stripe_events ADD CONSTRAINT stripe_events_status_check
    CHECK (status IN ('received', 'processed', 'ignored', 'held', 'failed'));
ALTER TABLE stripe_events ADD COLUMN trace_headers jsonb NOT NULL DEFAULT '{}'::jsonb;

CREATE INDEX stripe_events_to_apply ON stripe_events (received_at, id) WHERE status = 'received';

-- Wake the applier at commit instead of waiting for its next poll.
CREATE FUNCTION stripe_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('billing_stripe_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER stripe_events_notify AFTER INSERT ON stripe_events
    FOR EACH STATEMENT EXECUTE FUNCTION stripe_events_notify();
