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
