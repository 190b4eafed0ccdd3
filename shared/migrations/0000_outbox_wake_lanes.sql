-- Wake only the relay lanes that have work (shared/relay.py): a statement that wrote
-- only routine rows notifies with the payload 'routine', which the safety lane ignores,
-- so routine writes never wake it for an empty look. Any other payload (a safety-lane
-- row among the new rows, or '' from an older trigger) wakes both lanes.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        TG_TABLE_SCHEMA || '_outbox',
        CASE WHEN EXISTS (SELECT 1 FROM new_rows WHERE priority > 0) THEN 'safety'
             ELSE 'routine' END);
    RETURN NULL;
END $$;
DROP TRIGGER outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
