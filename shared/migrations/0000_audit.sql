-- Who changed what, when (docs/architecture.md "Access control"): one row per state-changing call that
-- succeeded. Ids and route names only, never a body (no PHI), readable by clinicians.
CREATE TABLE audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text NOT NULL,
    method      text NOT NULL,
    route       text NOT NULL,
    path_params jsonb NOT NULL DEFAULT '{}',
    status      integer NOT NULL
);
CREATE INDEX audit_at ON audit (at DESC);
