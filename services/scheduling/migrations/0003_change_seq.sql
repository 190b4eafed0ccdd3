-- Every insert or update of an appointment takes the next change number, so a
-- planner can refresh its cached calendar with only what changed since it looked.
CREATE SEQUENCE appointment_changes;
ALTER TABLE appointments ADD COLUMN change_seq bigint NOT NULL DEFAULT nextval('appointment_changes');
CREATE FUNCTION appointment_change_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_seq := nextval('appointment_changes');
    RETURN NEW;
END $$;
CREATE TRIGGER appointment_change_seq BEFORE UPDATE ON appointments
    FOR EACH ROW EXECUTE FUNCTION appointment_change_seq();
CREATE INDEX appointments_site_changes ON appointments (site_id, change_seq);
