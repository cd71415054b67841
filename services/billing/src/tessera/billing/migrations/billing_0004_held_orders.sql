-- depends: billing_0003_stripe_events_received

-- A signed checkout that does not match the catalog (amount, currency, quantity, payment
-- status) is recorded as an order `held` for an admin's review, never provisioned until
-- approved; `rejected` records the admin's refusal. Only a paid or refunded order must
-- carry a real quantity: a held one keeps what the session said (0 when it was not a number).
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN
    ('awaiting_payment', 'paid', 'payment_failed', 'refunded', 'held', 'rejected'));
ALTER TABLE orders DROP CONSTRAINT orders_quantity_check;
ALTER TABLE orders ADD CONSTRAINT orders_quantity_check
    CHECK (quantity >= 1 OR status NOT IN ('paid', 'refunded'));
ALTER TABLE orders DROP CONSTRAINT orders_seats_check;
ALTER TABLE orders ADD CONSTRAINT orders_seats_check
    CHECK (seats >= 1 OR status NOT IN ('paid', 'refunded'));

-- Why it was held, the Stripe event that held it, and the admin's decision.
ALTER TABLE orders ADD COLUMN hold_reason text;
ALTER TABLE orders ADD COLUMN hold_event_id text;
ALTER TABLE orders ADD COLUMN reviewed_by text;
ALTER TABLE orders ADD COLUMN reviewed_at timestamptz;
ALTER TABLE orders ADD COLUMN review_reason text;
CREATE INDEX orders_held ON orders (created_at DESC) WHERE hold_reason IS NOT NULL;

-- A price may let the buyer enter a Stripe promotion code; only then does billing accept
-- a session whose total is less the discount (total_details.amount_discount).
ALTER TABLE catalog ADD COLUMN allow_promotion_codes boolean NOT NULL DEFAULT false;
