-- depends: billing_0009_subscriptions

-- An account may also be learnt from auth (`auth.user.created.v1`: a customer a seller
-- created with the customer API, or an address that signed up), with auth's account id.
-- A catalogue change: the check is validated against today's rows, no rewrite.
SET LOCAL lock_timeout = '5s';

ALTER TABLE accounts DROP CONSTRAINT accounts_source_check,
    ADD CONSTRAINT accounts_source_check CHECK (source IN ('purchase', 'admin', 'auth'));
