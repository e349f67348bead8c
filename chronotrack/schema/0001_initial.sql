-- The timing schema. Table and column names are the ones operators already query by
-- hand with psql (see SPEC.md); keep them.

CREATE TABLE timing_sessions (
    id            BIGSERIAL PRIMARY KEY,
    session_name  TEXT NOT NULL,
    event_name    TEXT,
    event_id      TEXT,
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at     TIMESTAMPTZ
);
-- At most one active session: concurrent collectors cannot open two.
CREATE UNIQUE INDEX timing_sessions_one_active ON timing_sessions (status) WHERE status = 'active';

CREATE TABLE timing_locations (
    id             BIGSERIAL PRIMARY KEY,
    session_id     BIGINT NOT NULL REFERENCES timing_sessions (id) ON DELETE CASCADE,
    location_name  TEXT NOT NULL,
    reader_id      TEXT,
    description    TEXT,
    first_seen_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (session_id, location_name)
);

-- One row per TCP connection of a controller: who, when, which data stream.
CREATE TABLE controller_connections (
    id                 BIGSERIAL PRIMARY KEY,
    peer               TEXT NOT NULL,
    greeting           TEXT,
    stream_id          TEXT,
    event_name         TEXT,
    connected_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    disconnected_at    TIMESTAMPTZ,
    disconnect_reason  TEXT
);

CREATE TABLE timing_reads (
    id               BIGSERIAL PRIMARY KEY,
    session_id       BIGINT NOT NULL REFERENCES timing_sessions (id) ON DELETE CASCADE,
    location_id      BIGINT REFERENCES timing_locations (id) ON DELETE SET NULL,
    -- The controller's data stream ("connection:<id>" from getconnectionid, or
    -- "event:<event id>/reader:<reader id>"): sequence numbers are per stream and location.
    stream_id        TEXT NOT NULL,
    sequence_number  INTEGER NOT NULL,
    location_name    TEXT NOT NULL,
    tag_code         TEXT NOT NULL,
    read_time        TEXT NOT NULL,
    read_timestamp   TIMESTAMPTZ NOT NULL,
    lap_count        INTEGER NOT NULL,
    reader_id        TEXT NOT NULL,
    gator_number     INTEGER NOT NULL,
    raw_data         TEXT NOT NULL,
    received_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    connection_id    BIGINT REFERENCES controller_connections (id) ON DELETE SET NULL,
    -- A read re-sent by a controller (reconnect, replay, journal recovery) is stored once.
    CONSTRAINT timing_reads_once UNIQUE (session_id, stream_id, location_name, sequence_number, reader_id)
);
CREATE INDEX timing_reads_by_time ON timing_reads (read_timestamp DESC);
CREATE INDEX timing_reads_by_received ON timing_reads (received_at);
CREATE INDEX timing_reads_by_location ON timing_reads (session_id, location_name);
CREATE INDEX timing_reads_by_tag ON timing_reads (tag_code);
CREATE INDEX timing_reads_by_stream ON timing_reads (stream_id, location_name, sequence_number DESC);

-- Lines a controller sent that could not be parsed: kept, never silently dropped.
CREATE TABLE rejected_lines (
    id           BIGSERIAL PRIMARY KEY,
    session_id   BIGINT REFERENCES timing_sessions (id) ON DELETE SET NULL,
    peer         TEXT,
    stream_id    TEXT,
    line         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX rejected_lines_by_received ON rejected_lines (received_at);

-- The roster: who wears which bib.
CREATE TABLE participants (
    bib         TEXT PRIMARY KEY,
    first_name  TEXT NOT NULL DEFAULT '',
    last_name   TEXT NOT NULL DEFAULT '',
    age         INTEGER,
    gender      TEXT,
    city        TEXT,
    state       TEXT,
    division    TEXT,
    team        TEXT,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- New reads wake the display (possibly another process): one NOTIFY per insert
-- statement, carrying the highest new id; listeners fetch what they have not seen.
CREATE FUNCTION notify_timing_reads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('timing_reads', (SELECT max(id) FROM new_reads)::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER timing_reads_notify AFTER INSERT ON timing_reads
    REFERENCING NEW TABLE AS new_reads
    FOR EACH STATEMENT EXECUTE FUNCTION notify_timing_reads();
