-- A patient may wait for several things of one purpose at once: two rebooked doses of a
-- series, or a dose and an integration session (a proposal held while at risk waits for
-- the hold to lift). One entry per patient, purpose and place (series, sequence, kind).
ALTER TABLE waitlist DROP CONSTRAINT waitlist_pkey;
CREATE UNIQUE INDEX waitlist_place ON waitlist (
    patient_id, purpose, (coalesce(series_id, '')), (coalesce(sequence, 0)), (coalesce(kind, ''))
);
