-- The safety lane (docs/domain.md, "Safety signals first"): an outbox row with a higher
-- priority is published before every row of a lower one, whatever their order.
ALTER TABLE outbox ADD COLUMN priority smallint NOT NULL DEFAULT 0;
CREATE INDEX outbox_unpublished_priority ON outbox (priority DESC, id)
    WHERE published_at IS NULL AND priority > 0;
