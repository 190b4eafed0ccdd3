-- A published event leaves the outbox: the relay deletes its row and, in the same
-- statement, writes a narrow record of it here (ids, topic, key, lane, when written,
-- when published; not the event itself, which is on Kafka). Marking the row published
-- in place wrote a whole new version of it, ~700 bytes of event included, and new
-- entries in the outbox's two full indexes (published_at is in the partial indexes'
-- predicates, so the update was never HOT): 8-14 us of the database and ~860 bytes of
-- WAL on every event of the stack, against 4-5 us and ~210 bytes now
-- (docs/performance.md, "A published event leaves the outbox"). So the outbox holds
-- only what is still to be published (its published_at stays NULL), and the record is
-- kept 7 days (shared/relay.py, RelayConfig.retention_days), found by time through a
-- BRIN index (rows arrive in time order).
CREATE TABLE outbox_published (
    id           bigint NOT NULL,
    event_id     uuid NOT NULL,
    topic        text NOT NULL,
    key          text NOT NULL,
    priority     smallint NOT NULL,
    created_at   timestamptz NOT NULL,
    published_at timestamptz NOT NULL
);
CREATE INDEX outbox_published_at ON outbox_published USING brin (published_at);

-- Rows published before this migration move over.
INSERT INTO outbox_published (id, event_id, topic, key, priority, created_at, published_at)
SELECT id, event_id, topic, key, priority, created_at, published_at
FROM outbox WHERE published_at IS NOT NULL ORDER BY published_at, id;
DELETE FROM outbox WHERE published_at IS NOT NULL;

-- Every event written in the retention window, published or not: what an operator (or a
-- test) asks when tracing one patient's events.
CREATE VIEW outbox_events AS
SELECT id, event_id, topic, key, priority, created_at, published_at FROM outbox
UNION ALL
SELECT id, event_id, topic, key, priority, created_at, published_at FROM outbox_published;
