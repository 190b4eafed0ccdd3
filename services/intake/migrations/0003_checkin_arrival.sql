-- Arrival order of check-ins (services/intake/repository.py, prior_totals and measures).
--
-- Check-ins are ordered by submission time, then by arrival: of two check-ins with the
-- same submitted_at, the one received first is the earlier, and the later one's verdict
-- counts it. created_at cannot say that (it is the transaction's start, equal or out of
-- order between concurrent requests), so every check-in gets a number from a sequence
-- when it is stored; check-ins of one patient are stored one at a time (the patient's
-- row is locked, services/intake/commands.py record_checkin), so the numbers follow the order in which
-- their verdicts were reached.
--
-- The rows stored before this migration are numbered as the table is read, which is
-- near enough their insertion order; an UPDATE ordering them by created_at is not an
-- option, as a row still holding legacy plaintext may not be updated before the API's
-- start encrypts it (checkins_phi_encrypted, migration 0002).

ALTER TABLE checkins ADD COLUMN arrival bigint GENERATED ALWAYS AS IDENTITY;

DROP INDEX checkins_patient;
CREATE INDEX checkins_patient ON checkins (patient_id, submitted_at, arrival);
