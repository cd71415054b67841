-- depends: auth_0004_api_keys

-- What a seller keeps about its customer through the customer API (POST /v1/customers):
-- a display name and a small string map. Nullable name and an empty map for every user
-- that exists: a catalogue change, no rewrite.
ALTER TABLE users
    ADD COLUMN name text CHECK (length(name) <= 200),
    ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}';
-- The customer API lists a tenant's customers oldest first by (created_at, id).
CREATE INDEX users_tenant_created ON users (seller_id, mode, created_at, id);
