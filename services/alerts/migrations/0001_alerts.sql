-- The alerts service's own tables. Three kinds of durable timer live here as rows
-- with a due time and a partial index on it, claimed with FOR UPDATE SKIP LOCKED:
--   patients.deadline_at    a monitored patient's next check-in counts as missed
--   alerts.next_check_at    an alert's escalation / re-page decision is due
--   pages.next_attempt_at   a page delivery (first try, retry, or an expired lease)

-- A site's on-call policy: tiers of recipients (name, webhook_url), escalate_after_s.
CREATE TABLE oncall (
    site_id    text PRIMARY KEY,
    tiers      jsonb NOT NULL,
    version    integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL
);

CREATE TABLE alerts (
    alert_id          uuid PRIMARY KEY,
    patient_id        text NOT NULL,
    site_id           text NOT NULL,
    kind              text NOT NULL,
    severity          text NOT NULL CHECK (severity IN ('critical', 'high', 'warning')),
    status            text NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    reasons           text[] NOT NULL DEFAULT '{}',
    raised_at         timestamptz NOT NULL,
    first_seen_at     timestamptz NOT NULL,
    last_seen_at      timestamptz NOT NULL,
    occurrences       integer NOT NULL DEFAULT 1,
    source_event_id   text,
    -- the site's on-call tiers when the alert opened (NULL: nobody was on call)
    policy            jsonb,
    policy_version    integer,
    inhibited_by      uuid,
    tiers_paged       integer NOT NULL DEFAULT 0,
    last_escalated_at timestamptz,
    repages           integer NOT NULL DEFAULT 0,
    last_repaged_at   timestamptz,
    acknowledged_at   timestamptz,
    acknowledged_by   text,
    acknowledged_note text,
    acknowledged_tier integer,
    resolved_at       timestamptz,
    resolved_by       text,
    resolved_note     text,
    next_check_at     timestamptz,
    updated_at        timestamptz NOT NULL
);
-- One unresolved alert per patient and kind.
CREATE UNIQUE INDEX alerts_one_open ON alerts (patient_id, kind) WHERE status <> 'resolved';
CREATE INDEX alerts_due ON alerts (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX alerts_by_site ON alerts (site_id, raised_at DESC);
CREATE INDEX alerts_by_patient ON alerts (patient_id, raised_at DESC);
CREATE INDEX alerts_by_status ON alerts (status, raised_at DESC);

CREATE TABLE pages (
    page_id         uuid PRIMARY KEY,
    alert_id        uuid NOT NULL REFERENCES alerts (alert_id),
    idempotency_key text NOT NULL UNIQUE,
    tier            integer NOT NULL,       -- 0-based (tier 1 = 0)
    round           integer NOT NULL,       -- 0 first page, n = n-th re-page of the alert
    reason          text NOT NULL,          -- initial | escalation | repeat | ack_timeout
    recipient_index integer NOT NULL,
    recipient_name  text NOT NULL,
    webhook_url     text NOT NULL,
    body            bytea NOT NULL,         -- the exact bytes POSTed (and signed)
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    cancelled_at    timestamptz,
    last_error      text
);
CREATE INDEX pages_due ON pages (next_attempt_at) WHERE status = 'pending';
CREATE INDEX pages_by_alert ON pages (alert_id, created_at);

CREATE TABLE page_attempts (
    page_id     uuid NOT NULL REFERENCES pages (page_id),
    attempt     integer NOT NULL,
    started_at  timestamptz NOT NULL,
    duration_ms double precision NOT NULL,
    http_status integer,
    error       text,
    PRIMARY KEY (page_id, attempt)
);

-- Every patient the service has heard of. Its row is also the patient's lock: every
-- change to a patient's alerts or monitoring locks it first (then alerts, then pages).
CREATE TABLE patients (
    patient_id         text PRIMARY KEY,
    site_id            text NOT NULL,
    started_at         timestamptz,
    discharged_at      timestamptz,
    next_due_at        timestamptz,
    deadline_at        timestamptz,       -- the timer: NULL while not monitored
    consecutive_misses integer NOT NULL DEFAULT 0,
    total_misses       integer NOT NULL DEFAULT 0,
    last_checkin_at    timestamptz,
    last_missed_at     timestamptz,
    updated_at         timestamptz NOT NULL
);
CREATE INDEX patients_due ON patients (deadline_at) WHERE deadline_at IS NOT NULL;
