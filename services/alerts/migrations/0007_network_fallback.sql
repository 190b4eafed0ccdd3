-- Whose on-call an alert's policy snapshot is (docs/domain.md "On-call tiers and
-- escalation"): NULL for the alert's own site (every alert before this migration), or
-- '_network' when a critical alert opened at a site with nobody on call and took the
-- network ops on-call's tiers instead (services/alerts/domain/dedup.py ``opening``).
-- A site's PUT of its on-call takes such an alert back while it is still open.
ALTER TABLE alerts ADD COLUMN policy_site text;
