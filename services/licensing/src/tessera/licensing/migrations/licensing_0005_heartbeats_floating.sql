-- depends: licensing_0004_root_keys

-- Heartbeats: a policy may require each activated machine to call home every
-- `heartbeat_seconds`; a machine silent for longer than that plus `heartbeat_grace_seconds`
-- is deactivated by the sweeper (its seat freed, an event and an audit entry).
-- Floating seats: with `floating`, any number of machines may be activated but only
-- `max_machines` hold a seat at once; a seat is a lease of its own (`seat_until`), renewed by
-- each heartbeat, given back at check-in, and free again once it lapses. Floating needs
-- heartbeats: they are what renews a seat.
ALTER TABLE policies
    ADD COLUMN heartbeat_seconds integer CHECK (heartbeat_seconds IS NULL OR heartbeat_seconds > 0),
    ADD COLUMN heartbeat_grace_seconds integer NOT NULL DEFAULT 0 CHECK (heartbeat_grace_seconds >= 0),
    ADD COLUMN floating boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT policies_floating_needs_heartbeat CHECK (NOT floating OR heartbeat_seconds IS NOT NULL);

ALTER TABLE activations
    ADD COLUMN last_heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Floating policies only: the seat this machine holds until then (NULL: none).
    ADD COLUMN seat_until timestamptz;

-- The sweeper's scan: machines by their last sign of life.
CREATE INDEX activations_heartbeat ON activations (last_heartbeat_at);
-- Seats held per license, counted under the license's row lock at each check-out.
CREATE INDEX activations_seats ON activations (license_id, seat_until) WHERE seat_until IS NOT NULL;

-- A heartbeat that only moves last_heartbeat_at changes nothing validate answers: it must
-- not evict the license from every replica's cache (that would undo answering from memory).
DROP TRIGGER activations_changed ON activations;
CREATE TRIGGER activations_changed AFTER INSERT OR DELETE ON activations
    FOR EACH ROW EXECUTE FUNCTION licensing_license_changed();
CREATE TRIGGER activations_updated AFTER UPDATE ON activations
    FOR EACH ROW
    WHEN (OLD.seat_until IS DISTINCT FROM NEW.seat_until
          OR OLD.license_id IS DISTINCT FROM NEW.license_id
          OR OLD.fingerprint_hash IS DISTINCT FROM NEW.fingerprint_hash)
    EXECUTE FUNCTION licensing_license_changed();
