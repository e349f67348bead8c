-- A collector may send its next statement of reads while PostgreSQL still writes the one
-- before: the server then receives and parses it (the batch's arrays are most of the
-- statement's bytes) while the other is written, and starts it the moment the other commits,
-- instead of waiting for the collector to hear of the commit and send it then.
--
-- The statements of one collector still write one at a time: each takes the collector's own
-- advisory lock for its transaction first, (20, p_writer), so the second waits for the first to
-- commit. Ids are drawn while the lock is held, so they follow the order of the commits. The
-- collector sends a statement ahead only once the one before it holds the lock, so they commit
-- in the order sent, unless the one before fails: then the one sent ahead commits first, and
-- the failed one's reads, written again, get the higher ids.
-- Collectors sharing the database draw different keys and do not wait for each other. The
-- two-number form keeps these locks apart from the migrations' one-number lock.
CREATE FUNCTION store_timing_reads_in_turn(
    p_writer INT,
    p_partner BIGINT, p_event_id TEXT, p_event_name TEXT, p_clock_tolerance FLOAT8,
    p_location_names TEXT[], p_location_readers TEXT[],
    p_stream_ids TEXT[], p_sequence_numbers INT[], p_locations TEXT[], p_tags TEXT[], p_read_times TEXT[],
    p_read_micros BIGINT[], p_laps INT[], p_readers TEXT[], p_gators INT[], p_raw TEXT[],
    p_received_micros BIGINT[], p_connections BIGINT[],
    p_pair_streams TEXT[], p_pair_locations TEXT[])
RETURNS TABLE (session_id BIGINT, inserted BIGINT) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(20, p_writer);
    RETURN QUERY
    SELECT stored.session_id, stored.inserted
    FROM store_timing_reads(p_partner, p_event_id, p_event_name, p_clock_tolerance, p_location_names,
                            p_location_readers, p_stream_ids, p_sequence_numbers, p_locations, p_tags,
                            p_read_times, p_read_micros, p_laps, p_readers, p_gators, p_raw,
                            p_received_micros, p_connections, p_pair_streams, p_pair_locations) AS stored;
END;
$$;
