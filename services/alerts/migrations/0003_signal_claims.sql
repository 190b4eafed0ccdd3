-- The safety lane (docs/domain.md, "Safety signals first"): a check-in's or an intake's
-- suicide-risk signal arrives twice, on safety.signal and in its ordinary event; the
-- first of the two claims it here (in the transaction that raises the alert) and the
-- other finds it claimed: one occurrence per signal.
CREATE TABLE signal_claims (
    signal_id  text NOT NULL,
    kind       text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    via        text NOT NULL,            -- safety.signal | the ordinary topic
    PRIMARY KEY (signal_id, kind)
);
