-- On-call people (docs/domain.md "On-call people"; services/alerts/domain/rosters.py):
-- clinicians with contact methods and notification rules, schedules of rotations with
-- time-boxed overrides, and pages that go out by SMS and e-mail as well as by webhook.
-- Staff contact details live here and in pages' addresses only: never in events or logs.

CREATE TABLE clinicians (
    clinician_id       text PRIMARY KEY,
    name               text NOT NULL,
    timezone           text NOT NULL,
    -- [{"id", "type": "sms|email|webhook", "address"}]
    contact_methods    jsonb NOT NULL,
    -- [{"contact_method", "after_s"}]
    notification_rules jsonb NOT NULL,
    -- {"start": "HH:MM", "end": "HH:MM"} in the clinician's own zone, or NULL
    quiet_hours        jsonb,
    -- the last SMS reply code number handed out to this clinician (pages' reply_code)
    sms_seq            integer NOT NULL DEFAULT 0,
    version            integer NOT NULL DEFAULT 1,
    updated_at         timestamptz NOT NULL
);

CREATE TABLE schedules (
    schedule_id text PRIMARY KEY,
    name        text NOT NULL,
    timezone    text NOT NULL,
    -- [{"participants": [clinician_id], "shift": "daily|weekly", "handoff": "HH:MM",
    --   "handoff_weekday": "mon", "start": "YYYY-MM-DD"}]
    rotations   jsonb NOT NULL,
    version     integer NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE schedule_overrides (
    override_id  uuid PRIMARY KEY,
    schedule_id  text NOT NULL REFERENCES schedules (schedule_id),
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL CHECK (ends_at > starts_at),
    clinician_id text NOT NULL REFERENCES clinicians (clinician_id),
    replaces     text REFERENCES clinicians (clinician_id),
    created_at   timestamptz NOT NULL
);
CREATE INDEX schedule_overrides_by_schedule ON schedule_overrides (schedule_id, ends_at);

-- A page now goes out on a channel: a webhook (webhook_url, as before), an SMS or an
-- e-mail (address). A page to a clinician names them; every page to a person carries a
-- one-use acknowledgement link (ack_token), an SMS page a reply code ("<reply_code>a").
-- An acknowledgement notice to the others paged is a page too (reason 'ack_notice').
ALTER TABLE pages
    ALTER COLUMN webhook_url DROP NOT NULL,
    ADD COLUMN channel text NOT NULL DEFAULT 'webhook'
        CHECK (channel IN ('webhook', 'sms', 'email')),
    ADD COLUMN address text,
    ADD COLUMN clinician_id text,
    ADD COLUMN contact_method text,
    ADD COLUMN ack_token text,
    ADD COLUMN ack_used_at timestamptz,
    ADD COLUMN reply_code integer;
CREATE UNIQUE INDEX pages_ack_token ON pages (ack_token) WHERE ack_token IS NOT NULL;
CREATE INDEX pages_reply_code ON pages (clinician_id, reply_code, created_at DESC)
    WHERE reply_code IS NOT NULL;
