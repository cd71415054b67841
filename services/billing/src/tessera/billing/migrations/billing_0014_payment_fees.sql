-- depends: billing_0013_checkout_return

-- Stripe's fees and the refunds of subscription invoices, for revenue (docs/billing.md,
-- "Revenue"): each paid invoice or one-time order is a payment whose Stripe objects (its
-- charge, the charge's refunds, their balance transactions) a worker fetches from the
-- account the payment lives on (payments/worker.py). A row is its own queue entry: it
-- stays `pending` through a Stripe outage and is retried with a backoff.

CREATE TABLE payments (
    seller_id         uuid        NOT NULL,
    mode              text        NOT NULL CHECK (mode IN ('live', 'test')),
    -- The invoice (in_…) a subscription payment paid, or the order's payment intent (pi_…).
    source            text        NOT NULL,
    kind              text        NOT NULL CHECK (kind IN ('invoice', 'order')),
    -- The connected account the event came from (its objects live there); NULL: the
    -- platform's own account.
    stripe_account    text,
    currency          text        NOT NULL,
    amount            bigint      NOT NULL,
    paid_at           timestamptz NOT NULL,
    -- Learnt from Stripe: which payment intent and charge paid it.
    payment_intent_id text,
    charge_id         text,
    -- The most Stripe has said was refunded of the charge (`charge.refunded`), and how much
    -- of it the refunds fetched so far cover.
    amount_refunded   bigint      NOT NULL DEFAULT 0,
    refunds_fetched   bigint      NOT NULL DEFAULT 0,
    -- pending: the fees are not fetched yet (or a refund came since); known: every
    -- balance transaction is recorded; unavailable: Stripe has none billing can reach.
    state             text        NOT NULL DEFAULT 'pending'
                                  CHECK (state IN ('pending', 'known', 'unavailable')),
    attempts          integer     NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    leased_until      timestamptz,
    error             text,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (seller_id, mode, source)
);
CREATE INDEX payments_due ON payments (next_attempt_at) WHERE state = 'pending';
CREATE INDEX payments_intent ON payments (seller_id, mode, payment_intent_id);
CREATE INDEX payments_charge ON payments (seller_id, mode, charge_id);

CREATE FUNCTION payments_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('billing_payment_fees', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER payments_notify AFTER INSERT OR UPDATE OF amount_refunded ON payments
    FOR EACH STATEMENT EXECUTE FUNCTION payments_notify();

-- What each `charge.refunded` said was refunded (in total) of a subscription invoice's
-- charge, at Stripe's time: a period's refunds are the total at its end less the total at
-- its start, whatever order the events came in. (Orders keep theirs in order_adjustments.)
CREATE TABLE payment_refunds (
    seller_id       uuid        NOT NULL,
    mode            text        NOT NULL,
    event_id        text        NOT NULL,
    source          text        NOT NULL,
    amount_refunded bigint      NOT NULL,
    created         timestamptz NOT NULL,
    PRIMARY KEY (seller_id, mode, event_id),
    FOREIGN KEY (seller_id, mode, source) REFERENCES payments (seller_id, mode, source)
);
CREATE INDEX payment_refunds_source ON payment_refunds (seller_id, mode, source);

-- The balance transactions of the payments' charges and refunds, as Stripe reported them
-- (`fee` is Stripe's, application fees included; a refund's is what was given back).
CREATE TABLE payment_balance (
    seller_id  uuid        NOT NULL,
    mode       text        NOT NULL,
    id         text        NOT NULL,
    source     text        NOT NULL,
    object_id  text        NOT NULL,
    type       text        NOT NULL,
    created    timestamptz NOT NULL,
    currency   text        NOT NULL,
    amount     bigint      NOT NULL,
    fee        bigint      NOT NULL,
    PRIMARY KEY (seller_id, mode, id),
    FOREIGN KEY (seller_id, mode, source) REFERENCES payments (seller_id, mode, source)
);
CREATE INDEX payment_balance_source ON payment_balance (seller_id, mode, source);
