-- The same two guarantees as 0001 (no room or therapist booked twice at overlapping
-- times, no patient in two places at once), on a 64-bit key per resource and per patient
-- in place of btree_gist's text keys: the constraints cost a series' insert about 1.7 ms
-- instead of 4.5, the whole insert about 40% less (docs/performance.md, "The exclusion
-- constraints on 64-bit keys").
--
-- Equal resources (or patients) always have equal keys, so every real overlap is still
-- refused. Two different ones whose keys collide would only be refused a booking they
-- could have had (SlotTaken: the worker plans again); at a million keys the chance that
-- any two collide is about 3 in 10^8.
--
-- hashtextextended is the hash PostgreSQL's hash partitioning routes rows by, so it
-- stays the same across versions; a stored generated column is computed again on every
-- UPDATE of its row.
ALTER TABLE appointments
    ADD COLUMN resource_key bigint NOT NULL
        GENERATED ALWAYS AS (hashtextextended(site_id || chr(31) || resource, 0)) STORED,
    ADD COLUMN patient_key bigint NOT NULL
        GENERATED ALWAYS AS (hashtextextended(patient_id, 0)) STORED;

ALTER TABLE appointments
    DROP CONSTRAINT no_double_booking,
    DROP CONSTRAINT no_patient_overlap;

ALTER TABLE appointments
    ADD CONSTRAINT no_double_booking EXCLUDE USING gist (
        resource_key WITH =, tstzrange(start_at, end_at) WITH &&
    ) WHERE (status IN ('proposed', 'confirmed')),
    ADD CONSTRAINT no_patient_overlap EXCLUDE USING gist (
        patient_key WITH =, tstzrange(start_at, end_at) WITH &&
    ) WHERE (status IN ('proposed', 'confirmed'));
