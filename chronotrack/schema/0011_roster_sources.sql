-- Rosters pulled from registration platforms (chronotrack.roster_sources).
--
-- A partner's platform credentials, when the operator chose to remember them: only as a
-- Fernet token made with the server key (secret.key, kept outside the database), never as
-- plain text. One row per partner and platform.
CREATE TABLE roster_source_credentials (
    timing_partner_id  BIGINT NOT NULL REFERENCES timing_partners (id) ON DELETE CASCADE,
    source             TEXT NOT NULL CHECK (source IN ('chronotrack_live', 'runsignup', 'race_roster')),
    sealed             TEXT NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (timing_partner_id, source)
);

-- One pull of a roster, as the progress display and the JSON endpoint show it. No
-- credential is ever stored here: remote_event holds only the platform's event ids.
CREATE TABLE roster_imports (
    id                 BIGSERIAL PRIMARY KEY,
    timing_partner_id  BIGINT NOT NULL REFERENCES timing_partners (id) ON DELETE CASCADE,
    timing_event_id    BIGINT NOT NULL REFERENCES timing_events (id) ON DELETE CASCADE,
    source             TEXT NOT NULL CHECK (source IN ('chronotrack_live', 'runsignup', 'race_roster')),
    remote_event       TEXT NOT NULL CHECK (length(remote_event) <= 200),
    status             TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    pages_done         INTEGER NOT NULL DEFAULT 0,
    rows_done          INTEGER NOT NULL DEFAULT 0,
    rows_rejected      INTEGER NOT NULL DEFAULT 0,
    total              INTEGER,
    error              TEXT,
    problems           TEXT[] NOT NULL DEFAULT '{}',
    started_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at        TIMESTAMPTZ
);

CREATE INDEX roster_imports_by_partner ON roster_imports (timing_partner_id, id DESC);

REVOKE ALL ON roster_source_credentials FROM PUBLIC;
