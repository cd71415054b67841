-- depends: billing_0012_connect_hardening

-- Where a buyer lands after checkout (docs/billing.md, "Where the buyer lands").
--
-- 1. The success page asks `GET /v1/checkout/sessions/{id}` whatever seller the session
--    belongs to: Stripe's Checkout Session ids are unique across accounts, so the id alone
--    finds the order (indexed here; the unique index that exists leads with the tenant) or
--    the subscription it started.
-- 2. A subscription remembers the Checkout Session that started it (set when that session's
--    `checkout.session.completed` names the buyer). Subscriptions linked before this
--    migration take it from the recorded event, so a success page polled across the deploy
--    still finds its subscription.
-- 3. The built-in test checkout keeps the seller's own return pages, as Stripe keeps a
--    session's `success_url` and `cancel_url`.
SET LOCAL lock_timeout = '5s';

CREATE INDEX orders_by_checkout_session ON orders (checkout_session_id)
    WHERE checkout_session_id IS NOT NULL;

ALTER TABLE subscriptions ADD COLUMN checkout_session_id text;
UPDATE subscriptions s
   SET checkout_session_id = e.payload -> 'data' -> 'object' ->> 'id'
  FROM stripe_events e
 WHERE e.type = 'checkout.session.completed'
   AND e.status = 'processed'
   AND e.seller_id = s.seller_id AND e.mode = s.mode
   AND e.payload -> 'data' -> 'object' ->> 'mode' = 'subscription'
   AND coalesce(e.payload -> 'data' -> 'object' -> 'subscription' ->> 'id',
                e.payload -> 'data' -> 'object' ->> 'subscription') = s.id;
CREATE INDEX subscriptions_by_checkout_session ON subscriptions (checkout_session_id)
    WHERE checkout_session_id IS NOT NULL;

ALTER TABLE test_checkout_sessions
    ADD COLUMN success_url text,
    ADD COLUMN cancel_url text;
