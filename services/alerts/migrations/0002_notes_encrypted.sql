-- Acknowledge/resolve notes at rest (shared/crypto.py): stored as Fernet tokens (bytea),
-- encrypted by the alerts API with the keys of PHI_KEYS / PHI_KEYS_FILE, the stack's
-- one set of PHI keys (the intake service's too).
--
-- SQL cannot encrypt, so the notes written before this migration move to legacy_notes
-- (the only plaintext left in this schema), and the alerts API encrypts them into their
-- alerts and deletes them at start, before it serves (services/alerts/alerting/notes.py).
-- The alerts table never holds a plaintext note again: its check, valid from here on,
-- refuses a note column that is not a Fernet token (version byte 0x80, base64: "gAAAA",
-- at least the 100 characters of a token of an empty text). Moving rather than renaming
-- the old columns keeps that check valid at once, so the worker and the timers, which
-- update alerts but never read a note, go on working whether or not the API has started.

CREATE TABLE legacy_notes (
    alert_id uuid NOT NULL REFERENCES alerts (alert_id),
    step     text NOT NULL CHECK (step IN ('acknowledged', 'resolved')),
    note     text NOT NULL,
    PRIMARY KEY (alert_id, step)
);
INSERT INTO legacy_notes (alert_id, step, note)
SELECT alert_id, 'acknowledged', acknowledged_note FROM alerts
WHERE acknowledged_note IS NOT NULL
UNION ALL
SELECT alert_id, 'resolved', resolved_note FROM alerts WHERE resolved_note IS NOT NULL;

ALTER TABLE alerts
    DROP COLUMN acknowledged_note,
    DROP COLUMN resolved_note;
ALTER TABLE alerts
    ADD COLUMN acknowledged_note bytea,
    ADD COLUMN resolved_note bytea,
    ADD CONSTRAINT alerts_notes_encrypted CHECK (
        (acknowledged_note IS NULL OR (substring(acknowledged_note FROM 1 FOR 5) = 'gAAAA'::bytea
                                       AND octet_length(acknowledged_note) >= 100))
        AND (resolved_note IS NULL OR (substring(resolved_note FROM 1 FOR 5) = 'gAAAA'::bytea
                                       AND octet_length(resolved_note) >= 100))
    );
