-- depends: licensing_0002_licenses

-- Every replica keeps validate's answers in memory and forgets a license the moment a
-- committed change touches it: these triggers NOTIFY (delivered at commit, de-duplicated per
-- transaction) for every change to a license, its activations, or the catalog ('*').
CREATE OR REPLACE FUNCTION licensing_license_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'licenses' THEN
        PERFORM pg_notify('licensing_license_changed', COALESCE(NEW.id, OLD.id)::text);
    ELSIF TG_TABLE_NAME = 'activations' THEN
        PERFORM pg_notify('licensing_license_changed', COALESCE(NEW.license_id, OLD.license_id)::text);
    ELSE
        PERFORM pg_notify('licensing_license_changed', '*');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER licenses_changed AFTER INSERT OR UPDATE OR DELETE ON licenses
    FOR EACH ROW EXECUTE FUNCTION licensing_license_changed();
CREATE TRIGGER activations_changed AFTER INSERT OR UPDATE OR DELETE ON activations
    FOR EACH ROW EXECUTE FUNCTION licensing_license_changed();
CREATE TRIGGER policies_changed AFTER INSERT OR UPDATE OR DELETE ON policies
    FOR EACH STATEMENT EXECUTE FUNCTION licensing_license_changed();
CREATE TRIGGER products_changed AFTER INSERT OR UPDATE OR DELETE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION licensing_license_changed();
