-- btree_gist lets one exclusion constraint mix equality (resource) and overlap (time).
CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public;

CREATE TABLE sites (
    site_id         text PRIMARY KEY,
    name            text NOT NULL,
    timezone        text NOT NULL,
    hours           jsonb NOT NULL,
    treatment_rooms integer NOT NULL CHECK (treatment_rooms > 0),
    therapists      integer NOT NULL CHECK (therapists > 0),
    protocol        text NOT NULL DEFAULT 'standard',
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE series (
    series_id   text PRIMARY KEY,
    patient_id  text NOT NULL,
    site_id     text NOT NULL REFERENCES sites (site_id),
    purpose     text NOT NULL,          -- induction | post_induction | worsening | rebooked
    protocol    text NOT NULL,
    relaxed     text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX series_patient ON series (patient_id);

CREATE TABLE appointments (
    appointment_id text PRIMARY KEY,
    series_id      text NOT NULL REFERENCES series (series_id),
    patient_id     text NOT NULL,
    site_id        text NOT NULL REFERENCES sites (site_id),
    kind           text NOT NULL CHECK (kind IN ('dosing', 'integration', 'maintenance')),
    sequence       integer NOT NULL CHECK (sequence >= 1),
    status         text NOT NULL
                   CHECK (status IN ('proposed', 'confirmed', 'cancelled', 'completed', 'no_show')),
    start_at       timestamptz NOT NULL,
    end_at         timestamptz NOT NULL CHECK (end_at > start_at),
    resource       text NOT NULL,
    reason         text NOT NULL,
    cause          text,
    replaces       text REFERENCES appointments (appointment_id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- Never double-booked, whatever the number of workers: PostgreSQL refuses a second
    -- live booking of one room or therapist at an overlapping time, and a patient in
    -- two places at once.
    CONSTRAINT no_double_booking EXCLUDE USING gist (
        site_id WITH =, resource WITH =, tstzrange(start_at, end_at) WITH &&
    ) WHERE (status IN ('proposed', 'confirmed')),
    CONSTRAINT no_patient_overlap EXCLUDE USING gist (
        patient_id WITH =, tstzrange(start_at, end_at) WITH &&
    ) WHERE (status IN ('proposed', 'confirmed'))
);
CREATE INDEX appointments_patient ON appointments (patient_id, start_at);
CREATE INDEX appointments_site_time ON appointments (site_id, start_at);

-- Patients waiting for capacity (or for their site to be configured); retried
-- when a site changes or a booking is released. One open entry per patient+purpose.
CREATE TABLE waitlist (
    patient_id   text NOT NULL,
    site_id      text NOT NULL,
    purpose      text NOT NULL,
    reason       text NOT NULL,
    preferences  jsonb,
    not_before   timestamptz,
    since        timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 1,
    PRIMARY KEY (patient_id, purpose)
);
CREATE INDEX waitlist_site ON waitlist (site_id, since);

-- What scheduling knows of each patient from intake's events (ids and prefs only).
CREATE TABLE patients (
    patient_id    text PRIMARY KEY,
    site_id       text NOT NULL,
    preferences   jsonb,
    discharged_at timestamptz
);
