-- Since a published event leaves the outbox (0000_outbox_published.sql), every row of
-- it is unpublished, and the relay's two lanes read their own partial indexes
-- (outbox_unpublished_routine, outbox_unpublished_priority). The first index of every
-- unpublished row only cost each insert ~2 us and ~65 bytes of WAL
-- (docs/performance.md, "A published event leaves the outbox"); the backlog gauges and
-- the watchdog's outbox age read the (small) table itself.
DROP INDEX outbox_unpublished;
