-- The transaction that applied each row: events applied as one batch share it
-- (shared/processing.py EventProcessor.process_batch).
ALTER TABLE applied ADD COLUMN txid bigint NOT NULL DEFAULT txid_current();
