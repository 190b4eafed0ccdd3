-- Patients: the only place PHI (name, birth date, phone, e-mail) is stored.
CREATE TABLE patients (
    patient_id        text PRIMARY KEY,
    site_id           text NOT NULL,
    name              text NOT NULL,
    date_of_birth     date NOT NULL,
    phone             text,
    email             text,
    baseline_intake_id text NOT NULL,
    baseline_total    smallint NOT NULL,
    treatment_started_at timestamptz NOT NULL,
    discharged_at     timestamptz,
    discharged_by     text,
    discharge_note    text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE intakes (
    intake_id       text PRIMARY KEY,
    patient_id      text NOT NULL REFERENCES patients (patient_id),
    site_id         text NOT NULL,
    submitted_at    timestamptz NOT NULL,
    body_hash       bytea NOT NULL,
    phq9            smallint[] NOT NULL,
    phq9_total      smallint NOT NULL,
    phq9_severity   text NOT NULL,
    phq9_item9_positive boolean NOT NULL,
    suicide_risk    text NOT NULL,
    decision        text NOT NULL,
    reasons         text[] NOT NULL,
    conditions      text[] NOT NULL,
    preferences     jsonb,
    review_outcome  text,
    reviewed_by     text,
    review_note     text,
    reviewed_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX intakes_patient ON intakes (patient_id, submitted_at);

CREATE TABLE checkins (
    checkin_id      text PRIMARY KEY,
    patient_id      text NOT NULL REFERENCES patients (patient_id),
    submitted_at    timestamptz NOT NULL,
    body_hash       bytea NOT NULL,
    phq9            smallint[],
    phq9_total      smallint,
    phq9_item9_positive boolean NOT NULL,
    suicidal_ideation boolean NOT NULL,
    note            text,
    response        boolean NOT NULL,
    remission       boolean NOT NULL,
    worsening       boolean NOT NULL,
    worsening_reasons text[] NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkins_patient ON checkins (patient_id, submitted_at);
