-- depends: licensing_0006_tenancy

-- Review fixes to heartbeats and floating seats (docs/licensing.md, "Heartbeats and floating
-- seats").

-- A heartbeat is written up to HEARTBEAT_FLUSH_SECONDS (1 s by default) after it is
-- answered: a grace below that plus a margin would let an on-time machine be swept. The
-- sweeper also adds the flush interval itself; this refuses a policy that leaves no margin.
ALTER TABLE policies
    ADD CONSTRAINT policies_heartbeat_grace_covers_flush
    CHECK (heartbeat_seconds IS NULL OR heartbeat_grace_seconds >= 2);

-- The sweeper deactivates only machines of non-floating heartbeat policies. Without a flag
-- on the row it walked every activation of every policy (the lifetime licenses too) by
-- last_heartbeat_at; the flag is set at insert from the license's policy, so the partial
-- index holds only the machines the sweeper may ever delete. A migration that changes a
-- policy's heartbeat_seconds or floating must update this flag on its activations.
ALTER TABLE activations ADD COLUMN heartbeat_swept boolean NOT NULL DEFAULT false;

CREATE FUNCTION licensing_activation_heartbeat_swept() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.heartbeat_swept := EXISTS (
        SELECT 1 FROM licenses l
          JOIN policies pol
            ON pol.seller_id = l.seller_id AND pol.mode = l.mode AND pol.code = l.policy_code
         WHERE l.id = NEW.license_id AND pol.heartbeat_seconds IS NOT NULL AND NOT pol.floating);
    RETURN NEW;
END $$;

CREATE TRIGGER activations_heartbeat_swept BEFORE INSERT ON activations
    FOR EACH ROW EXECUTE FUNCTION licensing_activation_heartbeat_swept();

UPDATE activations a SET heartbeat_swept = true
  FROM licenses l
  JOIN policies pol
    ON pol.seller_id = l.seller_id AND pol.mode = l.mode AND pol.code = l.policy_code
 WHERE l.id = a.license_id AND pol.heartbeat_seconds IS NOT NULL AND NOT pol.floating;

DROP INDEX activations_heartbeat;
CREATE INDEX activations_heartbeat_swept ON activations (last_heartbeat_at) WHERE heartbeat_swept;
