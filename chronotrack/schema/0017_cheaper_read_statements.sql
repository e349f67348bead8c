-- Two costs less in every batch of reads the collector stores (store_timing_reads, 0014).
-- bench/insert_costs.py times both: .venv/bin/python -m bench.insert_costs --variants.
--
-- 1. A batch is inserted as a plain INSERT first, and with ON CONFLICT only when one of its
--    reads is already stored. INSERT ... ON CONFLICT DO NOTHING inserts every row
--    speculatively: it first probes the unique key for a match, then inserts the row with a
--    speculative token, then writes one more WAL record to confirm it. For a 5,000-read batch
--    that was about 12-15 of its 85 ms, and resent reads are rare: they come only after a
--    reconnect or a restart (a controller resending from its resume point, the journal
--    replaying batches whose commit it did not see). The plain attempt runs inside a block
--    that catches unique_violation: a resent read makes it fail as a whole, rolled back with
--    the block's subtransaction (rows, statement triggers, figures and NOTIFY alike), and the
--    batch is inserted again with ON CONFLICT DO NOTHING, exactly as before. The guarantee is
--    unchanged: timing_reads_once stores a read once, and the result counts only the new
--    reads. The statement is written once and run by EXECUTE, without and then with its
--    ON CONFLICT clause.
--
-- 2. Read and arrival times travel as microseconds since the epoch (BIGINT[]) instead of
--    timestamptz text: PostgreSQL reads a number for a fraction of what it takes to read a
--    date, a time and an offset, 10,000 times a batch (about 5 % of the batch). The
--    conversion back is exact over every year a read may carry (timestamp_from_micros).
--    The TIMESTAMPTZ[] form of the function stays, converting and calling the new one, so a
--    collector of the previous version sharing this database keeps storing its reads until
--    it is upgraded too.

-- Exact: whole seconds through to_timestamp (a double holds them times a million exactly
-- for 17,000 years either way), then the remaining microseconds.
CREATE FUNCTION timestamp_from_micros(p_micros BIGINT) RETURNS TIMESTAMPTZ
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_timestamp(p_micros / 1000000) + (p_micros % 1000000) * INTERVAL '1 microsecond'
$$;

CREATE FUNCTION micros_of(p_times TIMESTAMPTZ[]) RETURNS BIGINT[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT ARRAY(SELECT (extract(epoch FROM t.at) * 1000000)::BIGINT
                 FROM unnest(p_times) WITH ORDINALITY AS t (at, n) ORDER BY t.n)
$$;

CREATE FUNCTION store_timing_reads(
    p_partner BIGINT, p_event_id TEXT, p_event_name TEXT, p_clock_tolerance FLOAT8,
    p_location_names TEXT[], p_location_readers TEXT[],
    p_stream_ids TEXT[], p_sequence_numbers INT[], p_locations TEXT[], p_tags TEXT[], p_read_times TEXT[],
    p_read_micros BIGINT[], p_laps INT[], p_readers TEXT[], p_gators INT[], p_raw TEXT[],
    p_received_micros BIGINT[], p_connections BIGINT[],
    p_pair_streams TEXT[], p_pair_locations TEXT[])
RETURNS TABLE (session_id BIGINT, inserted BIGINT) LANGUAGE plpgsql AS $$
DECLARE
    v_session BIGINT;
    v_partner BIGINT;
    v_inserted BIGINT;
    v_on_conflict TEXT := '';
    v_insert_reads CONSTANT TEXT := $insert$
        INSERT INTO timing_reads (session_id, timing_partner_id, location_id, stream_id, sequence_number,
                                  location_name, tag_code, read_time, read_timestamp, lap_count, reader_id,
                                  gator_number, raw_data, received_at, connection_id, clock_suspect)
        SELECT $1, $2, locations.id, batch.stream_id, batch.sequence_number, batch.location_name,
               batch.tag_code, batch.read_time, timestamp_from_micros(batch.read_micros), batch.lap_count,
               batch.reader_id, batch.gator_number, batch.raw_data, timestamp_from_micros(batch.received_micros),
               batch.connection_id, abs(batch.read_micros - batch.received_micros) > $3 * 1000000
        FROM unnest($4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             WITH ORDINALITY AS batch (stream_id, sequence_number, location_name, tag_code, read_time,
                                       read_micros, lap_count, reader_id, gator_number, raw_data,
                                       received_micros, connection_id, arrival)
        LEFT JOIN timing_locations AS locations
               ON locations.session_id = $1 AND locations.location_name = batch.location_name
        -- Ids in arrival order: the planner may hash the batch side of the join, which loses it.
        ORDER BY batch.arrival
    $insert$;
BEGIN
    SELECT opened.session_id, opened.partner_id INTO v_session, v_partner
    FROM open_timing_session(p_partner, p_event_id, p_event_name) AS opened;

    INSERT INTO timing_locations (session_id, timing_partner_id, location_name, reader_id)
    SELECT v_session, v_partner, names.location_name, names.reader_id
    FROM unnest(p_location_names, p_location_readers) AS names (location_name, reader_id)
    ON CONFLICT ON CONSTRAINT timing_locations_session_id_location_name_key DO NOTHING;

    -- The plain INSERT first; once more with ON CONFLICT if a read of the batch is already stored.
    LOOP
        BEGIN
            EXECUTE v_insert_reads || v_on_conflict
                USING v_session, v_partner, p_clock_tolerance, p_stream_ids, p_sequence_numbers, p_locations,
                      p_tags, p_read_times, p_read_micros, p_laps, p_readers, p_gators, p_raw,
                      p_received_micros, p_connections;
            GET DIAGNOSTICS v_inserted = ROW_COUNT;
            EXIT;
        EXCEPTION WHEN unique_violation THEN
            IF v_on_conflict <> '' THEN
                RAISE;  -- not timing_reads_once: nothing to skip, the caller hears of it
            END IF;
            v_on_conflict := ' ON CONFLICT ON CONSTRAINT timing_reads_once DO NOTHING';
        END;
    END LOOP;

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

-- The previous version's call (times as TIMESTAMPTZ[]): converted, then as above.
CREATE OR REPLACE FUNCTION store_timing_reads(
    p_partner BIGINT, p_event_id TEXT, p_event_name TEXT, p_clock_tolerance FLOAT8,
    p_location_names TEXT[], p_location_readers TEXT[],
    p_stream_ids TEXT[], p_sequence_numbers INT[], p_locations TEXT[], p_tags TEXT[], p_read_times TEXT[],
    p_read_timestamps TIMESTAMPTZ[], p_laps INT[], p_readers TEXT[], p_gators INT[], p_raw TEXT[],
    p_received TIMESTAMPTZ[], p_connections BIGINT[],
    p_pair_streams TEXT[], p_pair_locations TEXT[])
RETURNS TABLE (session_id BIGINT, inserted BIGINT) LANGUAGE sql AS $$
    SELECT stored.session_id, stored.inserted
    FROM store_timing_reads(p_partner, p_event_id, p_event_name, p_clock_tolerance, p_location_names,
                            p_location_readers, p_stream_ids, p_sequence_numbers, p_locations, p_tags,
                            p_read_times, micros_of(p_read_timestamps), p_laps, p_readers, p_gators, p_raw,
                            micros_of(p_received), p_connections, p_pair_streams, p_pair_locations) AS stored
$$;
