-- depends: billing_0008_stripe_connect

-- Subscriptions (docs/billing.md, "Subscriptions"): each Stripe subscription of a tenant,
-- its state as billing last computed it, and the log of the Stripe events it was computed
-- from. The state is a fold of the whole log in Stripe's order (event `created`, then a
-- tie-break), never of the arrival order, so events that arrive twice or out of order end
-- in the same state. (0009, not 0008: helper E's Connect migration takes 0008.)
SET LOCAL lock_timeout = '5s';

CREATE TABLE subscriptions (
    seller_id             uuid        NOT NULL,
    mode                  text        NOT NULL CHECK (mode IN ('test', 'live')),
    id                    text        NOT NULL,  -- Stripe's subscription id (sub_…)
    -- The connected account the subscription lives in; NULL: the platform's own account.
    stripe_account        text,
    stripe_customer_id    text,
    -- The buyer's account, known once the checkout completes (or from another subscription
    -- of the same Stripe customer); nothing is published before.
    account_id            uuid,
    email                 text,
    item_id               text,       -- the subscription item whose price is changed
    price_id              text,       -- the Stripe price paid
    product               text,
    tier                  text,
    "interval"            text        CHECK ("interval" IN ('month', 'year')),
    status                text        CHECK (status IN ('incomplete', 'incomplete_expired',
                              'trialing', 'active', 'past_due', 'canceled', 'unpaid', 'paused')),
    current_period_start  timestamptz,
    current_period_end    timestamptz,
    cancel_at_period_end  boolean     NOT NULL DEFAULT false,
    trial_end             timestamptz,
    past_due_since        timestamptz,
    started_at            timestamptz,
    ended_at              timestamptz,
    -- What was last published (`billing.subscription.*.v1`), to tell started, changed,
    -- renewed and ended apart, and its sequence: consumers keep the highest.
    published             jsonb,
    sequence              integer     NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (seller_id, mode, id),
    FOREIGN KEY (seller_id, mode, account_id) REFERENCES accounts (seller_id, mode, id)
);
CREATE INDEX subscriptions_account ON subscriptions (seller_id, mode, account_id);
CREATE INDEX subscriptions_customer ON subscriptions (seller_id, mode, stripe_customer_id);

-- Every event that says something about a subscription, once (by Stripe's event id): what
-- the fold reads. `snapshot` is the object as the event carried it.
CREATE TABLE subscription_events (
    seller_id        uuid        NOT NULL,
    mode             text        NOT NULL CHECK (mode IN ('test', 'live')),
    subscription_id  text        NOT NULL,
    event_id         text        NOT NULL,
    type             text        NOT NULL,
    created          bigint      NOT NULL,  -- Stripe's event `created` (unix seconds)
    snapshot         jsonb       NOT NULL,
    -- Stripe's `data.previous_attributes`: what the change changed, as it was. Within one
    -- second it tells which change came first.
    previous         jsonb,
    PRIMARY KEY (seller_id, mode, subscription_id, event_id),
    FOREIGN KEY (seller_id, mode, subscription_id) REFERENCES subscriptions (seller_id, mode, id)
);
