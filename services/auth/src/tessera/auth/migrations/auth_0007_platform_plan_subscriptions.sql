-- depends: auth_0006_platform_plan

-- Each platform-plan subscription's own latest state (docs/sellers.md, "Platform plan"): a
-- seller may hold several (one bought through Tessera, another made in Stripe's dashboard),
-- and its plan is the best of them, so one ending never suspends a seller another still
-- pays for. `sequence` is billing's count of the subscription's events (a late or repeated
-- one changes nothing); the seller is the one the newest event names. `status` 'none' is a
-- subscription that is no plan (incomplete, or not the platform tier): it never decides.
-- The seller's `plan_*` columns stay, as the deciding subscription's copy the directory
-- record is made from.
CREATE TABLE platform_plan_subscriptions (
    subscription_id text        PRIMARY KEY,
    seller_id       uuid        NOT NULL REFERENCES sellers (id) ON DELETE CASCADE,
    sequence        integer     NOT NULL,
    status          text        NOT NULL
        CHECK (status IN ('none', 'active', 'past_due', 'ended')),
    grace_until     timestamptz,
    started_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX platform_plan_subscriptions_seller ON platform_plan_subscriptions (seller_id);

-- The one subscription each seller's row holds today becomes its first. Two sellers' rows
-- may hold the same subscription (its metadata was edited in Stripe to name another seller):
-- the row with its latest event keeps it.
INSERT INTO platform_plan_subscriptions
       (subscription_id, seller_id, sequence, status, grace_until, started_at)
SELECT DISTINCT ON (plan_subscription)
       plan_subscription, id, plan_sequence, plan_status, plan_grace_until,
       coalesce(plan_started_at, created_at)
  FROM sellers
 WHERE plan_subscription IS NOT NULL
 ORDER BY plan_subscription, plan_sequence DESC, id;
