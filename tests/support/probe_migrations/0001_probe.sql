-- What the probe consumer applied: one row per effect, to count duplicates.
CREATE TABLE applied (
    seq        bigserial PRIMARY KEY,
    event_id   text NOT NULL,
    topic      text NOT NULL,
    subject    text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
