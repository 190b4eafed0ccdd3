-- The routine relay lane's fetch (shared/relay.py: unpublished, priority 0, by id) as an
-- index of its own, read in order and stopped after the batch. Through the older
-- outbox_unpublished index, whose entries for published rows stay until a vacuum (the
-- update that publishes a row leaves its old entry behind), the planner chose a bitmap
-- scan that visited every row published since the last vacuum on every fetch: 2-6 ms a
-- fetch after a minute of load (docs/performance.md). A plain index scan marks the
-- entries of rows dead to everyone as it passes, so later fetches step over them.
-- On an upgrade this builds over the whole table (published rows are kept 7 days) and
-- holds the outbox's writers meanwhile: run it at a quiet hour.
CREATE INDEX outbox_unpublished_routine ON outbox (id)
    WHERE published_at IS NULL AND priority = 0;
