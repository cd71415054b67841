-- depends: licensing_0004_root_keys

-- Every seller-owned row names its seller and mode (docs/sellers.md, "Data ownership").
-- Today's rows (ChartGPT's product and policy included) are the home seller's, live. The
-- lease-signing keys, root keys and key sets stay the platform's.
--
-- Safe on a live database: one transaction (all or nothing) whose ACCESS EXCLUSIVE locks
-- last as long as the scans below, not a table rewrite. Each column is added with a
-- constant default, which Postgres stores once in the catalog instead of writing every row,
-- then the default is dropped so that an INSERT that forgets the tenant fails. What scans
-- is checking the CHECKs and foreign keys and building the new indexes: seconds at
-- licensing's sizes. Validate keeps answering from its cache meanwhile for the keys it
-- knows. `lock_timeout` makes the migration give up (and yoyo roll it back) instead of
-- queueing behind a long transaction while every other query queues behind it.
SET LOCAL lock_timeout = '5s';

ALTER TABLE customers
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CONSTRAINT customers_mode_check CHECK (mode IN ('test', 'live'));
ALTER TABLE products
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CONSTRAINT products_mode_check CHECK (mode IN ('test', 'live'));
ALTER TABLE policies
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CONSTRAINT policies_mode_check CHECK (mode IN ('test', 'live'));
ALTER TABLE orders
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CONSTRAINT orders_mode_check CHECK (mode IN ('test', 'live'));
ALTER TABLE order_disputes
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CONSTRAINT order_disputes_mode_check CHECK (mode IN ('test', 'live'));
ALTER TABLE licenses
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CONSTRAINT licenses_mode_check CHECK (mode IN ('test', 'live'));
ALTER TABLE activations
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CONSTRAINT activations_mode_check CHECK (mode IN ('test', 'live'));
ALTER TABLE audit_log
    ADD COLUMN seller_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
    ADD COLUMN mode text NOT NULL DEFAULT 'live' CONSTRAINT audit_log_mode_check CHECK (mode IN ('test', 'live'));

ALTER TABLE customers ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE products ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE policies ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE orders ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE order_disputes ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE licenses ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE activations ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE audit_log ALTER COLUMN seller_id DROP DEFAULT, ALTER COLUMN mode DROP DEFAULT;

-- Keys (docs/licensing.md, "Sellers and modes" says why each is what it is). Per tenant:
-- what a seller names (product and policy codes) and what billing's events key by
-- (account, order, dispute), so an event of another seller can never reach this seller's
-- row through them. Global: a license's id and key hash (the desktop API finds a license
-- by its key alone, and the row then names its tenant), an activation's id.
ALTER TABLE licenses DROP CONSTRAINT licenses_product_code_fkey;
ALTER TABLE licenses DROP CONSTRAINT licenses_policy_code_fkey;
ALTER TABLE policies DROP CONSTRAINT policies_product_code_fkey;
ALTER TABLE products DROP CONSTRAINT products_pkey, ADD PRIMARY KEY (seller_id, mode, code);
ALTER TABLE policies DROP CONSTRAINT policies_pkey, ADD PRIMARY KEY (seller_id, mode, code);
ALTER TABLE policies ADD CONSTRAINT policies_product_code_fkey
    FOREIGN KEY (seller_id, mode, product_code) REFERENCES products (seller_id, mode, code);
ALTER TABLE licenses ADD CONSTRAINT licenses_product_code_fkey
    FOREIGN KEY (seller_id, mode, product_code) REFERENCES products (seller_id, mode, code);
ALTER TABLE licenses ADD CONSTRAINT licenses_policy_code_fkey
    FOREIGN KEY (seller_id, mode, policy_code) REFERENCES policies (seller_id, mode, code);

ALTER TABLE customers DROP CONSTRAINT customers_pkey, ADD PRIMARY KEY (seller_id, mode, account_id);
ALTER TABLE orders DROP CONSTRAINT orders_pkey, ADD PRIMARY KEY (seller_id, mode, order_id);
ALTER TABLE order_disputes DROP CONSTRAINT order_disputes_pkey,
    ADD PRIMARY KEY (seller_id, mode, order_id, dispute_id);
-- One license per seat of an order, per tenant.
ALTER TABLE licenses DROP CONSTRAINT licenses_order_id_seat_key,
    ADD CONSTRAINT licenses_order_id_seat_key UNIQUE (seller_id, mode, order_id, seat);

-- An activation belongs to its license's tenant, enforced by the key.
ALTER TABLE licenses ADD CONSTRAINT licenses_tenant_id UNIQUE (seller_id, mode, id);
ALTER TABLE activations DROP CONSTRAINT activations_license_id_fkey,
    ADD CONSTRAINT activations_license_id_fkey
    FOREIGN KEY (seller_id, mode, license_id) REFERENCES licenses (seller_id, mode, id)
    ON DELETE CASCADE;

-- The lists and searches a tenant runs.
DROP INDEX licenses_account;
CREATE INDEX licenses_account ON licenses (seller_id, mode, account_id, created_at);
DROP INDEX licenses_email;
CREATE INDEX licenses_email ON licenses (seller_id, mode, lower(email));
CREATE INDEX licenses_created ON licenses (seller_id, mode, created_at);
DROP INDEX orders_held;
CREATE INDEX orders_held ON orders (seller_id, mode, updated_at) WHERE held_reason IS NOT NULL;
DROP INDEX audit_log_license;
CREATE INDEX audit_log_license ON audit_log (seller_id, mode, license_id, id DESC);
