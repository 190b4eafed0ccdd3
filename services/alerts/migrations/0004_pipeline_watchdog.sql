-- The pipeline watchdog (docs/architecture.md, "Pipeline watchdog";
-- services/alerts/watchdog.py). Operational rows only: no patient, no alert.

-- Each heartbeat the safety lane consumed (services/intake/heartbeat.py emits them):
-- when intake wrote it and when the lane saw it, both on the wall clock. Pruned by the
-- lane after an hour.
CREATE TABLE pipeline_heartbeats (
    beat_id    text PRIMARY KEY,
    emitter    text NOT NULL,
    emitted_at timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL
);
CREATE INDEX pipeline_heartbeats_emitted ON pipeline_heartbeats (emitted_at DESC);

-- Progress marks of the stages that have no event of their own: 'timers' is touched by
-- every pass of an alerts timers loop (services/alerts/timers.py), wall clock.
CREATE TABLE pipeline_progress (
    stage text PRIMARY KEY,
    at    timestamptz NOT NULL
);
