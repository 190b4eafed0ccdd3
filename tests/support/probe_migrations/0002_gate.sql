-- A closed gate: the probe's handler fails transiently (TimeoutError) on this subject's
-- events until the row is deleted, as if its database were away for that patient alone.
CREATE TABLE gate (
    subject text PRIMARY KEY
);
