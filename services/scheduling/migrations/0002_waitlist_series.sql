-- A rebooking that waits keeps its place in its series (kind and sequence).
ALTER TABLE waitlist ADD COLUMN series_id text REFERENCES series (series_id);
ALTER TABLE waitlist ADD COLUMN sequence integer;
ALTER TABLE waitlist ADD COLUMN kind text;
