-- Who may be scheduled automatically (docs/domain.md, "Who is scheduled, and when").
-- The patient's latest intake (by submission time) and its decision; a clinician's
-- review is kept per intake, so a review that arrives before its screen still counts.
ALTER TABLE patients ADD COLUMN intake_id text;
ALTER TABLE patients ADD COLUMN intake_submitted_at timestamptz;
ALTER TABLE patients ADD COLUMN decision text
    CHECK (decision IN ('eligible', 'needs_review', 'ineligible'));
-- When the current course of treatment started (the cleared intake that began it):
-- a discharge older than this belongs to an earlier course and changes nothing.
ALTER TABLE patients ADD COLUMN course_started_at timestamptz;
-- Patients scheduled before clearance was recorded had their series because they were
-- cleared then.
UPDATE patients p SET decision = 'eligible'
WHERE EXISTS (SELECT 1 FROM series s WHERE s.patient_id = p.patient_id);

CREATE TABLE intake_reviews (
    intake_id   text PRIMARY KEY,
    patient_id  text NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('approved', 'declined')),
    reviewed_at timestamptz NOT NULL
);

-- Hold while at risk: one row per suicide_risk alert, learnt from alert events;
-- the patient is held while any row is unresolved.
CREATE TABLE holds (
    alert_id    text PRIMARY KEY,
    patient_id  text NOT NULL,
    site_id     text NOT NULL,
    since       timestamptz NOT NULL,
    resolved_at timestamptz
);
CREATE INDEX holds_open ON holds (patient_id) WHERE resolved_at IS NULL;
CREATE INDEX holds_open_site ON holds (site_id) WHERE resolved_at IS NULL;

-- Every protocol number per site: the site body's protocol as given (a preset name or
-- an object of numbers), and the numbers it resolves to; a series keeps the numbers
-- it was planned with.
ALTER TABLE sites ADD COLUMN protocol_spec jsonb;
ALTER TABLE sites ADD COLUMN protocol_numbers jsonb;
ALTER TABLE series ADD COLUMN protocol_numbers jsonb;
ALTER TABLE series ADD COLUMN intake_id text;
