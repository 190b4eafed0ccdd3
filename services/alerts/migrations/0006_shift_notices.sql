-- Shift notices (docs/domain.md "On-call people"; services/alerts/shifts.py): a clinician
-- is told SHIFT_NOTICE_BEFORE_S before a shift of theirs starts ('upcoming'), and sent a
-- digest of the alerts still open when it starts ('digest'). One row per schedule,
-- clinician, shift start and kind (the scan inserts them ahead, idempotently); sent by
-- the timers process on the clinician's first notification rule's contact method.
CREATE TABLE shift_notices (
    notice_id       uuid PRIMARY KEY,
    schedule_id     text NOT NULL,
    clinician_id    text NOT NULL,
    shift_start     timestamptz NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('upcoming', 'digest')),
    due_at          timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    channel         text,
    body            bytea,
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    last_error      text,
    UNIQUE (schedule_id, clinician_id, shift_start, kind)
);
CREATE INDEX shift_notices_due ON shift_notices (next_attempt_at) WHERE status = 'pending';
