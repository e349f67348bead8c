-- Resume points that neither a gap nor a spoofed jump can move past unstored reads.
--
-- A controller's stream is resumed from the first sequence number of a location that
-- is missing, not from the highest stored + 1: a client claiming a real controller's
-- connection id and sending sequence 999999 used to make the collector skip every read
-- the real controller had not sent yet. The watermark is kept by the store in the same
-- transaction as the insert, so resuming never scans timing_reads.

CREATE TABLE stream_watermarks (
    timing_partner_id   BIGINT NOT NULL REFERENCES timing_partners (id) ON DELETE CASCADE,
    stream_id           TEXT NOT NULL,
    location_name       TEXT NOT NULL,
    -- Every sequence number 1..contiguous_through of this stream and location is stored.
    contiguous_through  INTEGER NOT NULL DEFAULT 0,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (timing_partner_id, stream_id, location_name)
);

-- Move one watermark past the reads now stored: reads ahead of it in chunks of 1000
-- sequence numbers (an index range scan on timing_reads_by_stream), so the cost is the
-- length of the newly contiguous run, and one probe when the next number is missing.
CREATE FUNCTION advance_stream_watermark(p_partner BIGINT, p_stream TEXT, p_location TEXT)
RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    v_through INTEGER;
    v_top INTEGER;
    v_count INTEGER;
BEGIN
    INSERT INTO stream_watermarks (timing_partner_id, stream_id, location_name)
    VALUES (p_partner, p_stream, p_location) ON CONFLICT DO NOTHING;
    SELECT contiguous_through INTO v_through FROM stream_watermarks
    WHERE timing_partner_id = p_partner AND stream_id = p_stream AND location_name = p_location
    FOR UPDATE;
    LOOP
        SELECT max(n), count(*) INTO v_top, v_count
        FROM (SELECT n, row_number() OVER (ORDER BY n) AS position
              FROM (SELECT DISTINCT sequence_number AS n FROM timing_reads
                    WHERE timing_partner_id = p_partner AND stream_id = p_stream
                      AND location_name = p_location
                      AND sequence_number > v_through AND sequence_number <= v_through + 1000) AS ahead
             ) AS numbered
        WHERE n = v_through + position;
        EXIT WHEN v_top IS NULL;
        v_through := v_top;
        EXIT WHEN v_count < 1000;
    END LOOP;
    UPDATE stream_watermarks SET contiguous_through = v_through, updated_at = now()
    WHERE timing_partner_id = p_partner AND stream_id = p_stream AND location_name = p_location
      AND contiguous_through <> v_through;
    RETURN v_through;
END;
$$;

-- Watermarks of the reads already stored.
SELECT advance_stream_watermark(keys.timing_partner_id, keys.stream_id, keys.location_name)
FROM (SELECT DISTINCT timing_partner_id, stream_id, location_name FROM timing_reads) AS keys;

-- A read whose time is far from the collector's clock when it arrived (a controller
-- with a wrong clock): stored, because it still carries a real finish, and flagged.
ALTER TABLE timing_reads ADD COLUMN clock_suspect BOOLEAN NOT NULL DEFAULT false;
