-- The NOTIFY that wakes the live feed names the lowest and the highest id of the statement's
-- new reads ("low:high"), not only the highest.
--
-- Statements that insert reads at the same time (two collectors on one database, each with
-- batches of up to 5,000 reads, for two events) can commit out of id order. A listener that
-- has already passed a late statement's highest id must fetch the whole statement again; with
-- only that id it fetched the 1,000 ids below it (web/live.py), and the rest of a large late
-- batch never reached the screens or the live results. Listeners of the old form (a bare id)
-- read this payload as no id and fetch what is above the last id they saw.
CREATE OR REPLACE FUNCTION notify_timing_reads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('timing_reads', (SELECT min(id)::text || ':' || max(id)::text FROM new_reads));
    RETURN NULL;
END;
$$;
