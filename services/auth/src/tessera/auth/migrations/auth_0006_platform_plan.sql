-- depends: auth_0005_customers

-- Each seller's platform plan (docs/sellers.md, "Platform plan"), as billing's subscription
-- events about the home seller's tier `platform` tell it. The subscription and its
-- `sequence` order the events (a late or repeated one changes nothing); `plan_started_at`
-- lets a newer subscription replace an older one. Defaults: no plan, for every seller.
ALTER TABLE sellers
    ADD COLUMN plan_status       text        NOT NULL DEFAULT 'none'
        CHECK (plan_status IN ('none', 'active', 'past_due', 'ended')),
    ADD COLUMN plan_grace_until  timestamptz,
    ADD COLUMN plan_subscription text,
    ADD COLUMN plan_sequence     integer     NOT NULL DEFAULT 0,
    ADD COLUMN plan_started_at   timestamptz;
