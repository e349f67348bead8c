-- Figures kept up to date as reads are stored, so the pages never count timing_reads.
--
-- With ten million reads, /api/timing/stats and /api/timing/sessions counted the whole table
-- on every request (seconds, then a 503). Here statement-level triggers with transition tables
-- fold every INSERT, DELETE and UPDATE of timing_reads into two small tables, in the same
-- transaction, whoever the writer is (the collector, psql, retention's batched deletes):
--
--   read_figures   one row per session and location that has reads: how many, how many gun
--                  times, first and last read time, newest read id, and a bitmap of the runner
--                  tags seen (an estimate of distinct tags, see distinct_tags_estimate).
--   read_minutes   reads received per partner, event and minute (the "reads per minute, last
--                  hour" chart).
--
-- A row is removed when its count reaches zero, so "the locations of an event" is a lookup.
-- Every upsert takes its row locks in key order (figures, then minutes), so two collectors
-- inserting at once wait for each other instead of deadlocking. The writes are one upsert per
-- (session, location) and one per (partner, event, minute) for a whole batch: a batch of
-- reads from one mat costs two row updates, not one per read.

-- The bitmap behind the distinct-tag estimate: bit (hashtext(tag) & 8191) is set for every
-- runner tag (not 'guntime' / 'newlocation', see chronotrack/reads.py). Bitmaps of several
-- rows OR together, so one estimate covers any set of sessions and locations, and a tag seen
-- at two locations counts once. Linear counting: exact in practice for a few hundred tags,
-- within about 1% up to 20,000 distinct tags, within a few % up to 50,000. A delete that
-- leaves reads at a location does not clear bits (a bitmap cannot forget one tag): the
-- estimate there counts tags seen, until the location's last read goes.
CREATE FUNCTION distinct_tags_estimate(seen BIT VARYING) RETURNS BIGINT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN seen IS NULL THEN 0
        WHEN bit_count(seen) = 0 THEN 0
        -- Saturated: no empty slot left, the estimate is a floor.
        WHEN bit_count(seen) = length(seen) THEN round(length(seen) * ln(length(seen)))::bigint
        ELSE round(length(seen) * ln(length(seen)::float8 / (length(seen) - bit_count(seen))))::bigint
    END
$$;

CREATE TABLE read_figures (
    session_id         BIGINT NOT NULL,
    location_name      TEXT NOT NULL,
    -- No foreign keys: rows go when their reads go (deleting a session deletes its reads,
    -- which the trigger below counts down), and TRUNCATE of the timing tables stays as it was.
    timing_partner_id  BIGINT NOT NULL,
    timing_event_id    BIGINT NOT NULL,
    reads              BIGINT NOT NULL,
    gun_times          BIGINT NOT NULL,
    first_read         TIMESTAMPTZ NOT NULL,
    last_read          TIMESTAMPTZ NOT NULL,
    last_id            BIGINT NOT NULL,
    tags_seen          BIT(8192) NOT NULL,
    PRIMARY KEY (session_id, location_name)
);
CREATE INDEX read_figures_by_partner ON read_figures (timing_partner_id, timing_event_id);
CREATE INDEX read_figures_by_event ON read_figures (timing_event_id);

CREATE TABLE read_minutes (
    timing_partner_id  BIGINT NOT NULL,
    timing_event_id    BIGINT NOT NULL,
    minute             TIMESTAMPTZ NOT NULL,  -- date_trunc('minute', received_at)
    reads              BIGINT NOT NULL,
    -- Minute first: the chart asks for the last hour, whatever the scope.
    PRIMARY KEY (minute, timing_partner_id, timing_event_id)
);

-- What the triggers pass on from a statement's rows: only the columns the figures need.
CREATE TYPE read_figure_input AS (
    id              BIGINT,
    session_id      BIGINT,
    partner_id      BIGINT,
    location_name   TEXT,
    tag_code        TEXT,
    read_timestamp  TIMESTAMPTZ,
    received_at     TIMESTAMPTZ
);

-- A statement's reads summed per session and location.
CREATE FUNCTION read_figure_groups(p_reads read_figure_input[])
RETURNS TABLE (session_id BIGINT, location_name TEXT, partner_id BIGINT, reads BIGINT, gun_times BIGINT,
               first_read TIMESTAMPTZ, last_read TIMESTAMPTZ, last_id BIGINT)
LANGUAGE sql STABLE AS $$
    SELECT r.session_id, r.location_name, min(r.partner_id), count(*),
           count(*) FILTER (WHERE r.tag_code = 'guntime'),
           min(r.read_timestamp), max(r.read_timestamp), max(r.id)
    FROM unnest(p_reads) AS r GROUP BY r.session_id, r.location_name
$$;

-- Add a statement's new reads to the figures.
CREATE FUNCTION read_figures_add(p_reads read_figure_input[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO read_figures AS f (session_id, location_name, timing_partner_id, timing_event_id, reads,
                                   gun_times, first_read, last_read, last_id, tags_seen)
    SELECT g.session_id, g.location_name, g.partner_id, s.timing_event_id, g.reads, g.gun_times,
           g.first_read, g.last_read, g.last_id,
           coalesce(t.seen, B'0'::bit(8192))
    FROM read_figure_groups(p_reads) AS g
    JOIN timing_sessions s ON s.id = g.session_id
    LEFT JOIN (SELECT slots.session_id, slots.location_name, bit_or(set_bit(B'0'::bit(8192), slots.slot, 1)) AS seen
               FROM (SELECT DISTINCT r.session_id, r.location_name, hashtext(r.tag_code) & 8191 AS slot
                     FROM unnest(p_reads) AS r
                     WHERE r.tag_code NOT IN ('guntime', 'newlocation')) AS slots
               GROUP BY slots.session_id, slots.location_name) AS t
           ON t.session_id = g.session_id AND t.location_name = g.location_name
    ORDER BY g.session_id, g.location_name
    ON CONFLICT (session_id, location_name) DO UPDATE SET
        reads = f.reads + EXCLUDED.reads,
        gun_times = f.gun_times + EXCLUDED.gun_times,
        first_read = least(f.first_read, EXCLUDED.first_read),
        last_read = greatest(f.last_read, EXCLUDED.last_read),
        last_id = greatest(f.last_id, EXCLUDED.last_id),
        tags_seen = f.tags_seen | EXCLUDED.tags_seen;

    INSERT INTO read_minutes AS m (minute, timing_partner_id, timing_event_id, reads)
    SELECT date_trunc('minute', r.received_at), r.partner_id, s.timing_event_id, count(*)
    FROM unnest(p_reads) AS r JOIN timing_sessions s ON s.id = r.session_id
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (minute, timing_partner_id, timing_event_id) DO UPDATE SET reads = m.reads + EXCLUDED.reads;
END;
$$;

-- Take a statement's deleted reads out of the figures. Counts go down; a first or last read
-- time or newest id that may have been among the deleted rows is looked up again along
-- timing_reads_by_location (session, location, read_timestamp): two index probes per location.
-- The event of a session comes from read_figures itself: when a session is deleted, its reads
-- go by cascade after the session row, which is no longer there to join.
CREATE FUNCTION read_figures_remove(p_reads read_figure_input[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- Lock in key order first (figures, then minutes): an UPDATE's join order is the planner's.
    PERFORM 1 FROM read_figures f
    WHERE (f.session_id, f.location_name) IN (SELECT r.session_id, r.location_name FROM unnest(p_reads) AS r)
    ORDER BY f.session_id, f.location_name FOR UPDATE;
    PERFORM 1 FROM read_minutes m
    WHERE (m.minute, m.timing_partner_id, m.timing_event_id) IN
          (SELECT date_trunc('minute', r.received_at), r.partner_id, f.timing_event_id
           FROM unnest(p_reads) AS r
           JOIN read_figures f ON f.session_id = r.session_id AND f.location_name = r.location_name)
    ORDER BY m.minute, m.timing_partner_id, m.timing_event_id FOR UPDATE;

    -- Two statements: a row updated in a CTE cannot be deleted by the same statement.
    UPDATE read_minutes m SET reads = m.reads - gone.reads
    FROM (SELECT r.partner_id, f.timing_event_id, date_trunc('minute', r.received_at) AS minute, count(*) AS reads
          FROM unnest(p_reads) AS r
          JOIN read_figures f ON f.session_id = r.session_id AND f.location_name = r.location_name
          GROUP BY 1, 2, 3) AS gone
    WHERE m.timing_partner_id = gone.partner_id AND m.timing_event_id = gone.timing_event_id
      AND m.minute = gone.minute;
    DELETE FROM read_minutes m
    WHERE m.reads <= 0 AND (m.timing_partner_id, m.timing_event_id, m.minute) IN
          (SELECT r.partner_id, f.timing_event_id, date_trunc('minute', r.received_at)
           FROM unnest(p_reads) AS r
           JOIN read_figures f ON f.session_id = r.session_id AND f.location_name = r.location_name);

    UPDATE read_figures f SET reads = f.reads - gone.reads, gun_times = f.gun_times - gone.gun_times
    FROM read_figure_groups(p_reads) AS gone
    WHERE f.session_id = gone.session_id AND f.location_name = gone.location_name;
    DELETE FROM read_figures f
    WHERE f.reads <= 0
      AND (f.session_id, f.location_name) IN (SELECT r.session_id, r.location_name FROM unnest(p_reads) AS r);

    UPDATE read_figures f SET
        first_read = CASE WHEN g.first_read <= f.first_read THEN
                              (SELECT min(r.read_timestamp) FROM timing_reads r
                               WHERE r.session_id = f.session_id AND r.location_name = f.location_name)
                          ELSE f.first_read END,
        last_read = CASE WHEN g.last_read >= f.last_read THEN
                             (SELECT max(r.read_timestamp) FROM timing_reads r
                              WHERE r.session_id = f.session_id AND r.location_name = f.location_name)
                         ELSE f.last_read END,
        last_id = CASE WHEN g.last_id >= f.last_id THEN
                           (SELECT max(r.id) FROM timing_reads r
                            WHERE r.session_id = f.session_id AND r.location_name = f.location_name)
                       ELSE f.last_id END
    FROM read_figure_groups(p_reads) AS g
    WHERE f.session_id = g.session_id AND f.location_name = g.location_name
      AND (g.first_read <= f.first_read OR g.last_read >= f.last_read OR g.last_id >= f.last_id);
END;
$$;

CREATE FUNCTION read_figures_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM read_figures_add(ARRAY(
        SELECT ROW(n.id, n.session_id, n.timing_partner_id, n.location_name, n.tag_code, n.read_timestamp,
                   n.received_at)::read_figure_input FROM new_reads n));
    RETURN NULL;
END;
$$;

CREATE FUNCTION read_figures_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM read_figures_remove(ARRAY(
        SELECT ROW(o.id, o.session_id, o.timing_partner_id, o.location_name, o.tag_code, o.read_timestamp,
                   o.received_at)::read_figure_input FROM old_reads o));
    RETURN NULL;
END;
$$;

-- Nothing in the product updates reads; a hand-made UPDATE is taken as "the old rows went,
-- the new rows came".
CREATE FUNCTION read_figures_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM read_figures_remove(ARRAY(
        SELECT ROW(o.id, o.session_id, o.timing_partner_id, o.location_name, o.tag_code, o.read_timestamp,
                   o.received_at)::read_figure_input FROM old_reads o));
    PERFORM read_figures_add(ARRAY(
        SELECT ROW(n.id, n.session_id, n.timing_partner_id, n.location_name, n.tag_code, n.read_timestamp,
                   n.received_at)::read_figure_input FROM new_reads n));
    RETURN NULL;
END;
$$;

CREATE FUNCTION read_figures_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM read_figures;
    DELETE FROM read_minutes;
    RETURN NULL;
END;
$$;

-- The indexes of timing_reads, each paid for by every insert, kept only where a query the
-- product runs needs one: the primary key (id walks: the live stream, pages, latest read per
-- location), timing_reads_once (a resent read is stored once), timing_reads_by_received
-- (retention's oldest-first batches), timing_reads_by_stream (resume points),
-- timing_reads_by_partner (a partner's newest reads), timing_reads_by_connection (retention's
-- connection records, ON DELETE SET NULL), timing_reads_by_time (below), and the two
-- widened after it.
-- timing_reads_by_time (read_timestamp DESC) stays, for the operators' own psql query
-- "SELECT * FROM timing_reads ORDER BY read_timestamp DESC LIMIT 3", which the specification
-- promises keeps working: without it that query sorts the whole table (seconds at 10M rows).
-- Widen the session/location index by read_timestamp: the delete trigger's first/last read
-- look-ups are two probes on it (it serves the exports' per-session look-up as before).
DROP INDEX timing_reads_by_location;
CREATE INDEX timing_reads_by_location ON timing_reads (session_id, location_name, read_timestamp);
-- The /reads bib filter (?bib=) walks one tag's reads newest first and stops at the page size,
-- instead of fetching every read of that bib on the hub and sorting them.
DROP INDEX timing_reads_by_tag;
CREATE INDEX timing_reads_by_tag ON timing_reads (tag_code, id);

-- The triggers exist before the backfill, in this transaction: a writer waits for the
-- migration to commit, and no read is counted twice or missed.
CREATE TRIGGER timing_reads_figures_insert AFTER INSERT ON timing_reads
    REFERENCING NEW TABLE AS new_reads FOR EACH STATEMENT EXECUTE FUNCTION read_figures_after_insert();
CREATE TRIGGER timing_reads_figures_delete AFTER DELETE ON timing_reads
    REFERENCING OLD TABLE AS old_reads FOR EACH STATEMENT EXECUTE FUNCTION read_figures_after_delete();
CREATE TRIGGER timing_reads_figures_update AFTER UPDATE ON timing_reads
    REFERENCING OLD TABLE AS old_reads NEW TABLE AS new_reads
    FOR EACH STATEMENT EXECUTE FUNCTION read_figures_after_update();
CREATE TRIGGER timing_reads_figures_truncate AFTER TRUNCATE ON timing_reads
    FOR EACH STATEMENT EXECUTE FUNCTION read_figures_after_truncate();

-- The reads stored before this migration.
INSERT INTO read_figures (session_id, location_name, timing_partner_id, timing_event_id, reads, gun_times,
                          first_read, last_read, last_id, tags_seen)
SELECT g.session_id, g.location_name, g.partner_id, s.timing_event_id, g.reads, g.gun_times, g.first_read,
       g.last_read, g.last_id, coalesce(t.seen, B'0'::bit(8192))
FROM (SELECT session_id, location_name, min(timing_partner_id) AS partner_id, count(*) AS reads,
             count(*) FILTER (WHERE tag_code = 'guntime') AS gun_times,
             min(read_timestamp) AS first_read, max(read_timestamp) AS last_read, max(id) AS last_id
      FROM timing_reads GROUP BY session_id, location_name) AS g
JOIN timing_sessions s ON s.id = g.session_id
LEFT JOIN (SELECT slots.session_id, slots.location_name, bit_or(set_bit(B'0'::bit(8192), slots.slot, 1)) AS seen
           FROM (SELECT DISTINCT session_id, location_name, hashtext(tag_code) & 8191 AS slot
                 FROM timing_reads WHERE tag_code NOT IN ('guntime', 'newlocation')) AS slots
           GROUP BY slots.session_id, slots.location_name) AS t
       ON t.session_id = g.session_id AND t.location_name = g.location_name;

INSERT INTO read_minutes (minute, timing_partner_id, timing_event_id, reads)
SELECT date_trunc('minute', r.received_at), r.timing_partner_id, s.timing_event_id, count(*)
FROM timing_reads r JOIN timing_sessions s ON s.id = r.session_id
GROUP BY 1, 2, 3;
