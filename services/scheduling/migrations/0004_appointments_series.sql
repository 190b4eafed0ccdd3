-- A series' appointments by index: the dashboard's per-site induction figures, and a
-- rebooking's look at the other doses of its series, touch a few rows per series
-- instead of every appointment of the site.
CREATE INDEX appointments_series ON appointments (series_id);
