-- depends: billing_0005_held_refunds

-- Every seller-owned row names its seller and mode (docs/sellers.md, "Data ownership").
-- Today's rows are the home seller's, live.
--
-- Safe on a live database: the whole file is one transaction (all or nothing), and its
-- ACCESS EXCLUSIVE locks last as long as the scans below, not a table rewrite. Each column
-- is added with a constant default, which Postgres stores once in the catalog instead of
-- writing every row (existing rows read it back), then the default is dropped so that an
-- INSERT that forgets the tenant fails. What scans is checking the new CHECK and foreign
-- keys and building the new indexes: at billing's sizes (thousands to a few million rows)
-- that is seconds. `lock_timeout` makes the migration give up, and yoyo roll it back,
-- instead of queueing behind a long transaction while every other query queues behind it;
-- the next start (or `tessera-billing migrate`) tries again.
SET LOCAL lock_timeout = '5s';

ALTER TABLE accounts
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CONSTRAINT accounts_mode_check CHECK (mode IN ('test', 'live'));
ALTER TABLE catalog
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CONSTRAINT catalog_mode_check CHECK (mode IN ('test', 'live'));
ALTER TABLE orders
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CONSTRAINT orders_mode_check CHECK (mode IN ('test', 'live'));
ALTER TABLE order_adjustments
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CONSTRAINT order_adjustments_mode_check CHECK (mode IN ('test', 'live'));
ALTER TABLE disputes
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CONSTRAINT disputes_mode_check CHECK (mode IN ('test', 'live'));
ALTER TABLE test_checkout_sessions
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CONSTRAINT test_checkout_sessions_mode_check CHECK (mode IN ('test', 'live'));
ALTER TABLE audit_log
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CONSTRAINT audit_log_mode_check CHECK (mode IN ('test', 'live'));
ALTER TABLE stripe_events
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CONSTRAINT stripe_events_mode_check CHECK (mode IN ('test', 'live'));

ALTER TABLE accounts ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE catalog ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE orders ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE order_adjustments ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE disputes ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE test_checkout_sessions ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE audit_log ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE stripe_events ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;

-- Unique keys (docs/billing.md, "Sellers and modes" says why each is what it is).
-- Per tenant: what a seller names (an email, a SKU) and Stripe's ids of a seller's objects
-- (checkout session, payment intent, dispute), so another seller's delivery can never
-- reach this seller's row through them.
DROP INDEX accounts_email;
CREATE UNIQUE INDEX accounts_email ON accounts (seller_id, mode, email);

ALTER TABLE test_checkout_sessions DROP CONSTRAINT test_checkout_sessions_sku_fkey;
ALTER TABLE catalog DROP CONSTRAINT catalog_pkey, ADD PRIMARY KEY (seller_id, mode, sku);
ALTER TABLE test_checkout_sessions ADD CONSTRAINT test_checkout_sessions_sku_fkey
    FOREIGN KEY (seller_id, mode, sku) REFERENCES catalog (seller_id, mode, sku);

ALTER TABLE orders DROP CONSTRAINT orders_checkout_session_id_key;
ALTER TABLE orders DROP CONSTRAINT orders_payment_intent_id_key;
CREATE UNIQUE INDEX orders_checkout_session ON orders (seller_id, mode, checkout_session_id);
CREATE UNIQUE INDEX orders_payment_intent ON orders (seller_id, mode, payment_intent_id);
CREATE INDEX orders_charge ON orders (seller_id, mode, charge_id) WHERE charge_id IS NOT NULL;

-- An order belongs to its account's tenant, and a refund, dispute or adjustment to its
-- order's, enforced by the keys.
ALTER TABLE accounts ADD CONSTRAINT accounts_tenant_id UNIQUE (seller_id, mode, id);
ALTER TABLE orders DROP CONSTRAINT orders_account_id_fkey,
    ADD CONSTRAINT orders_account_id_fkey
    FOREIGN KEY (seller_id, mode, account_id) REFERENCES accounts (seller_id, mode, id);
ALTER TABLE orders ADD CONSTRAINT orders_tenant_id UNIQUE (seller_id, mode, id);
ALTER TABLE order_adjustments DROP CONSTRAINT order_adjustments_order_id_fkey,
    ADD CONSTRAINT order_adjustments_order_id_fkey
    FOREIGN KEY (seller_id, mode, order_id) REFERENCES orders (seller_id, mode, id);
ALTER TABLE disputes DROP CONSTRAINT disputes_order_id_fkey,
    ADD CONSTRAINT disputes_order_id_fkey
    FOREIGN KEY (seller_id, mode, order_id) REFERENCES orders (seller_id, mode, id);
ALTER TABLE disputes DROP CONSTRAINT disputes_pkey, ADD PRIMARY KEY (seller_id, mode, id);

-- The lists and searches a tenant runs.
DROP INDEX orders_email;
CREATE INDEX orders_email ON orders (seller_id, mode, email);
DROP INDEX orders_held;
CREATE INDEX orders_held ON orders (seller_id, mode, created_at DESC) WHERE hold_reason IS NOT NULL;
DROP INDEX orders_paid_at;
CREATE INDEX orders_paid_at ON orders (seller_id, mode, paid_at) WHERE paid_at IS NOT NULL;
DROP INDEX orders_account;
CREATE INDEX orders_account ON orders (seller_id, mode, account_id, created_at DESC);
CREATE INDEX orders_created ON orders (seller_id, mode, created_at DESC);
CREATE INDEX accounts_created ON accounts (seller_id, mode, created_at DESC);
DROP INDEX audit_log_subject;
CREATE INDEX audit_log_subject ON audit_log (seller_id, mode, subject, at DESC);
DROP INDEX stripe_events_held;
CREATE INDEX stripe_events_held ON stripe_events (seller_id, mode, hold_key) WHERE status = 'held';
DROP INDEX stripe_events_received;
CREATE INDEX stripe_events_received ON stripe_events (seller_id, mode, received_at DESC);
DROP INDEX stripe_events_status;
CREATE INDEX stripe_events_status ON stripe_events (seller_id, mode, status, received_at DESC);
-- Global on purpose: `stripe_events.id` (Stripe's event ids are unique across every Stripe
-- account; the ingress records a delivery once by it), `order_adjustments.stripe_event_id`
-- (one adjustment per recorded event) and `stripe_events_to_apply` (the applier's queue
-- serves every tenant).
