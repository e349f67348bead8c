-- Fewer checks and one index less for every stored read, with the same guarantees.
--
-- A batch of 5,000 reads spent most of its time in PostgreSQL on four per-row foreign-key
-- checks and nine indexes (see bench/insert_costs.py). Two of them did one job twice:
--
-- 1. A read's partner is its session's partner. Two foreign keys (session_id -> sessions,
--    timing_partner_id -> partners) checked each row twice and did not even guarantee that.
--    One composite foreign key (session_id, timing_partner_id) -> timing_sessions (id,
--    timing_partner_id) checks each row once and guarantees both: the session exists, the
--    partner is the session's, and (through timing_sessions' own foreign key) the partner
--    exists. Deleting a partner deletes its sessions, which delete their reads, as before;
--    deleting a session deletes its reads, as before. It holds for every writer (psql too).
--
-- 2. timing_reads_by_stream (partner, stream, location, sequence DESC) served only the
--    stream watermarks (advance_stream_watermark, 0003). The unique key that makes a resent
--    read stored once now leads with the same columns: (partner, stream, location, sequence,
--    session, reader). Because a session has one partner (1. above), adding the partner to
--    the key changes nothing about which reads count as the same read; the watermark range
--    scans use its leading columns, and the separate index goes.
--
-- Kept, each for a query the product runs: the primary key, timing_reads_once,
-- timing_reads_by_time (the operators' "ORDER BY read_timestamp DESC LIMIT 3", SPEC.md),
-- timing_reads_by_received (retention), timing_reads_by_location (the figures' delete
-- trigger, exports), timing_reads_by_tag (the bib filter), timing_reads_by_partner (pages,
-- the stream's catch-up), timing_reads_by_connection (deleting connection records). Kept
-- foreign keys: location_id and connection_id (their rows are not created in the insert's
-- own statement, and ON DELETE SET NULL needs the real constraint).

-- Reads whose partner is not their session's (none are written by the collector) take the
-- session's partner, so the composite key below can hold.
UPDATE timing_reads AS r SET timing_partner_id = s.timing_partner_id
FROM timing_sessions AS s
WHERE s.id = r.session_id AND r.timing_partner_id <> s.timing_partner_id;

CREATE UNIQUE INDEX timing_sessions_with_partner ON timing_sessions (id, timing_partner_id);
ALTER TABLE timing_reads
    DROP CONSTRAINT timing_reads_session_id_fkey,
    DROP CONSTRAINT timing_reads_timing_partner_id_fkey,
    ADD CONSTRAINT timing_reads_session_and_partner_fkey FOREIGN KEY (session_id, timing_partner_id)
        REFERENCES timing_sessions (id, timing_partner_id) ON DELETE CASCADE;

ALTER TABLE timing_reads
    DROP CONSTRAINT timing_reads_once,
    ADD CONSTRAINT timing_reads_once
        UNIQUE (timing_partner_id, stream_id, location_name, sequence_number, session_id, reader_id);
DROP INDEX timing_reads_by_stream;

-- The maintained figures' tag bitmap (0008) was built by OR-ing one 1 KiB bit string per
-- distinct tag slot of a batch: thousands of 1 KiB copies per 5,000 reads. Here the slots
-- set one element each of a boolean array (assigned in place), turned into the bit string
-- once. Same bits, same figures; read_figures_add is otherwise 0008's.
CREATE FUNCTION tags_bitmap(p_slots INTEGER[]) RETURNS BIT(8192)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_bits BOOLEAN[] := array_fill(false, ARRAY[8192]);
    v_slot INTEGER;
BEGIN
    FOREACH v_slot IN ARRAY p_slots LOOP
        v_bits[v_slot + 1] := true;
    END LOOP;
    RETURN translate(array_to_string(v_bits, ''), 'tf', '10')::bit(8192);
END;
$$;

CREATE OR REPLACE FUNCTION read_figures_add(p_reads read_figure_input[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO read_figures AS f (session_id, location_name, timing_partner_id, timing_event_id, reads,
                                   gun_times, first_read, last_read, last_id, tags_seen)
    SELECT g.session_id, g.location_name, g.partner_id, s.timing_event_id, g.reads, g.gun_times,
           g.first_read, g.last_read, g.last_id,
           coalesce(t.seen, B'0'::bit(8192))
    FROM read_figure_groups(p_reads) AS g
    JOIN timing_sessions s ON s.id = g.session_id
    LEFT JOIN (SELECT r.session_id, r.location_name, tags_bitmap(array_agg(hashtext(r.tag_code) & 8191)) AS seen
               FROM unnest(p_reads) AS r
               WHERE r.tag_code NOT IN ('guntime', 'newlocation')
               GROUP BY r.session_id, r.location_name) AS t
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

-- The collector's whole write of one event's batch, in one statement: the session, the
-- locations, the reads and the stream watermarks, as the store used to send them one by one
-- (five round trips and a BEGIN/COMMIT, each waiting for a collector busy reading its
-- controllers). Called alone it is its own transaction; a batch of several events calls it
-- once per event, in key order, inside one transaction. Returns the session and how many
-- reads were new (a resent read is stored once, timing_reads_once).
CREATE FUNCTION store_timing_reads(
    p_partner BIGINT, p_event_id TEXT, p_event_name TEXT, p_clock_tolerance FLOAT8,
    p_location_names TEXT[], p_location_readers TEXT[],
    p_stream_ids TEXT[], p_sequence_numbers INT[], p_locations TEXT[], p_tags TEXT[], p_read_times TEXT[],
    p_read_timestamps TIMESTAMPTZ[], p_laps INT[], p_readers TEXT[], p_gators INT[], p_raw TEXT[],
    p_received TIMESTAMPTZ[], p_connections BIGINT[],
    p_pair_streams TEXT[], p_pair_locations TEXT[])
RETURNS TABLE (session_id BIGINT, inserted BIGINT) LANGUAGE plpgsql AS $$
DECLARE
    v_session BIGINT;
    v_partner BIGINT;
    v_inserted BIGINT;
BEGIN
    SELECT opened.session_id, opened.partner_id INTO v_session, v_partner
    FROM open_timing_session(p_partner, p_event_id, p_event_name) AS opened;

    INSERT INTO timing_locations (session_id, timing_partner_id, location_name, reader_id)
    SELECT v_session, v_partner, names.location_name, names.reader_id
    FROM unnest(p_location_names, p_location_readers) AS names (location_name, reader_id)
    ON CONFLICT ON CONSTRAINT timing_locations_session_id_location_name_key DO NOTHING;

    INSERT INTO timing_reads (session_id, timing_partner_id, location_id, stream_id, sequence_number,
                              location_name, tag_code, read_time, read_timestamp, lap_count, reader_id,
                              gator_number, raw_data, received_at, connection_id, clock_suspect)
    SELECT v_session, v_partner, locations.id, batch.stream_id, batch.sequence_number, batch.location_name,
           batch.tag_code, batch.read_time, batch.read_timestamp, batch.lap_count, batch.reader_id,
           batch.gator_number, batch.raw_data, batch.received_at, batch.connection_id,
           abs(extract(epoch FROM batch.read_timestamp - batch.received_at)) > p_clock_tolerance
    FROM unnest(p_stream_ids, p_sequence_numbers, p_locations, p_tags, p_read_times, p_read_timestamps,
                p_laps, p_readers, p_gators, p_raw, p_received, p_connections)
         WITH ORDINALITY AS batch (stream_id, sequence_number, location_name, tag_code, read_time,
                                   read_timestamp, lap_count, reader_id, gator_number, raw_data, received_at,
                                   connection_id, arrival)
    LEFT JOIN timing_locations AS locations
           ON locations.session_id = v_session AND locations.location_name = batch.location_name
    -- Ids in arrival order: the planner may hash the batch side of the join, which loses it.
    ORDER BY batch.arrival
    ON CONFLICT ON CONSTRAINT timing_reads_once DO NOTHING;
    GET DIAGNOSTICS v_inserted = ROW_COUNT;

    -- In a fixed order, so two writers lock the watermarks alike (0003).
    PERFORM advance_stream_watermark(v_partner, written.stream_id, written.location_name)
    FROM (SELECT DISTINCT pairs.stream_id, pairs.location_name
          FROM unnest(p_pair_streams, p_pair_locations) AS pairs (stream_id, location_name)
          ORDER BY 1, 2) AS written;

    session_id := v_session;
    inserted := v_inserted;
    RETURN NEXT;
END;
$$;
