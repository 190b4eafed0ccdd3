-- PHI at rest (shared/crypto.py): the patient's name, birth date, phone and
-- e-mail and every free-text note (discharge, review, check-in) are stored as Fernet
-- tokens (bytea), encrypted by the service with the keys of PHI_KEYS / PHI_KEYS_FILE.
--
-- SQL cannot encrypt, so the plaintext columns of the rows written before this
-- migration are kept, renamed legacy_*: the intake API encrypts them and nulls the
-- plaintext at start, before it serves (services/intake/repository.py prepare_phi). The NOT VALID checks
-- refuse any new plaintext from now on (a new or updated row must have its legacy_*
-- columns null); the service validates them once no legacy plaintext is left, and a
-- later migration drops the legacy_* columns.

ALTER TABLE patients RENAME COLUMN name TO legacy_name;
ALTER TABLE patients RENAME COLUMN date_of_birth TO legacy_date_of_birth;
ALTER TABLE patients RENAME COLUMN phone TO legacy_phone;
ALTER TABLE patients RENAME COLUMN email TO legacy_email;
ALTER TABLE patients RENAME COLUMN discharge_note TO legacy_discharge_note;
ALTER TABLE patients
    ALTER COLUMN legacy_name DROP NOT NULL,
    ALTER COLUMN legacy_date_of_birth DROP NOT NULL,
    ADD COLUMN name bytea,
    ADD COLUMN date_of_birth bytea,
    ADD COLUMN phone bytea,
    ADD COLUMN email bytea,
    ADD COLUMN discharge_note bytea,
    ADD CONSTRAINT patients_phi_encrypted CHECK (
        legacy_name IS NULL AND legacy_date_of_birth IS NULL AND legacy_phone IS NULL
        AND legacy_email IS NULL AND legacy_discharge_note IS NULL
        AND name IS NOT NULL AND date_of_birth IS NOT NULL
    ) NOT VALID;

ALTER TABLE intakes RENAME COLUMN review_note TO legacy_review_note;
ALTER TABLE intakes
    ADD COLUMN review_note bytea,
    ADD CONSTRAINT intakes_phi_encrypted CHECK (legacy_review_note IS NULL) NOT VALID;

ALTER TABLE checkins RENAME COLUMN note TO legacy_note;
ALTER TABLE checkins
    ADD COLUMN note bytea,
    ADD CONSTRAINT checkins_phi_encrypted CHECK (legacy_note IS NULL) NOT VALID;
