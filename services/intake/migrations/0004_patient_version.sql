-- A patient's version (services/intake/repository.py, checkin_context and
-- insert_checkin): every change to what a new check-in's verdict depends on (a check-in
-- stored, an intake that starts a new course) adds one to it in the same statement. A
-- check-in is decided on one consistent read of the patient and their check-ins, and
-- stored only if the version is still the one read; otherwise it is decided again. So
-- check-ins of one patient are still stored one at a time, in the order their verdicts
-- were reached (the arrival numbers of migration 0003), without holding the patient's
-- row lock across round trips.
ALTER TABLE patients ADD COLUMN version bigint NOT NULL DEFAULT 0;
