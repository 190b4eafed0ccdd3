-- The safety relay lane listens on a channel of its own, '<schema>_outbox_safety'
-- (shared/relay.py), which only a statement that wrote a safety-lane row notifies. Under
-- 0000_outbox_wake_lanes.sql both lanes listened on '<schema>_outbox' and the safety
-- lane ignored the payload 'routine', but every routine write's notification was still
-- sent to it and the relay woke to read it. Now none is sent to it. (PostgreSQL still
-- signals every listening session of the database at each NOTIFY, whatever its
-- channels, so its session still wakes briefly: 0.050 -> 0.033 ms of database CPU per
-- routine check-in, docs/performance.md.)
--
-- '<schema>_outbox' keeps its payloads ('routine' for routine rows only, 'safety' when a
-- safety-lane row is among them): the routine lane wakes on any, and a relay from before
-- this migration, still running while a new process migrates, behaves as it did.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows WHERE priority > 0) THEN
        PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox_safety', '');
        PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', 'safety');
    ELSE
        PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', 'routine');
    END IF;
    RETURN NULL;
END $$;
