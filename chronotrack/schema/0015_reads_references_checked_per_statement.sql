-- The references of timing_reads are checked once per statement instead of once per read.
--
-- A 5,000-read batch spent about a third of its time in PostgreSQL on three foreign keys
-- (bench/insert_costs.py): a foreign key fires one check per row, 15,000 look-ups for a batch
-- that names one session, two locations and four connections. Here the same rules are kept by
-- statement-level triggers with transition tables: one look-up per DISTINCT value a statement
-- writes, for every writer (the collector, psql, retention), in the same transaction.
--
-- Rules kept, as the foreign keys had them:
--   (session_id, timing_partner_id) -> timing_sessions (id, timing_partner_id), ON DELETE CASCADE
--   location_id   -> timing_locations (id),       ON DELETE SET NULL
--   connection_id -> controller_connections (id), ON DELETE SET NULL
-- and one more: a read's location is a location OF ITS SESSION (the collector always wrote it
-- so; now psql cannot write otherwise either). That makes "the reads of a location" a walk of
-- the (session_id, ...) index when a location is deleted.
--
-- As a foreign key does, the check takes FOR KEY SHARE locks on the rows it finds: a delete
-- of one of them waits for the inserting transaction, and its cascade then sees the new reads;
-- an insert that waited for a delete finds the row gone and fails. Errors are SQLSTATE 23503
-- (foreign_key_violation) and name the old constraint, as before.
--
-- A referenced key cannot change (NO ACTION) while reads refer to it, and TRUNCATE of a
-- referenced table is refused while reads refer to it (list timing_reads in the same TRUNCATE).

ALTER TABLE timing_reads
    DROP CONSTRAINT timing_reads_session_and_partner_fkey,
    DROP CONSTRAINT timing_reads_location_id_fkey,
    DROP CONSTRAINT timing_reads_connection_id_fkey;

-- The reads' side: every session, location and connection a statement's new rows name exists.
CREATE FUNCTION timing_reads_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_session BIGINT;
    v_partner BIGINT;
    v_location BIGINT;
    v_connection BIGINT;
BEGIN
    -- Lock first (a concurrent delete is waited for), then look with a fresh snapshot.
    PERFORM 1 FROM timing_sessions s
    WHERE (s.id, s.timing_partner_id) IN (SELECT DISTINCT n.session_id, n.timing_partner_id FROM new_reads n)
    ORDER BY s.id FOR KEY SHARE OF s;
    SELECT k.session_id, k.timing_partner_id INTO v_session, v_partner
    FROM (SELECT DISTINCT n.session_id, n.timing_partner_id FROM new_reads n) AS k
    WHERE NOT EXISTS (SELECT 1 FROM timing_sessions s
                      WHERE s.id = k.session_id AND s.timing_partner_id = k.timing_partner_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "timing_reads" violates foreign key constraint "timing_reads_session_and_partner_fkey"'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (session_id, timing_partner_id)=(%s, %s) is not present in table "timing_sessions".',
                                  v_session, v_partner),
                  CONSTRAINT = 'timing_reads_session_and_partner_fkey', TABLE = 'timing_reads';
    END IF;

    PERFORM 1 FROM timing_locations l
    WHERE (l.id, l.session_id) IN (SELECT DISTINCT n.location_id, n.session_id FROM new_reads n
                                   WHERE n.location_id IS NOT NULL)
    ORDER BY l.id FOR KEY SHARE OF l;
    SELECT k.location_id INTO v_location
    FROM (SELECT DISTINCT n.location_id, n.session_id FROM new_reads n WHERE n.location_id IS NOT NULL) AS k
    WHERE NOT EXISTS (SELECT 1 FROM timing_locations l WHERE l.id = k.location_id AND l.session_id = k.session_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "timing_reads" violates foreign key constraint "timing_reads_location_id_fkey"'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (location_id)=(%s) is not a location of the read''s session in table "timing_locations".',
                                  v_location),
                  CONSTRAINT = 'timing_reads_location_id_fkey', TABLE = 'timing_reads';
    END IF;

    PERFORM 1 FROM controller_connections c
    WHERE c.id IN (SELECT DISTINCT n.connection_id FROM new_reads n WHERE n.connection_id IS NOT NULL)
    ORDER BY c.id FOR KEY SHARE OF c;
    SELECT k.connection_id INTO v_connection
    FROM (SELECT DISTINCT n.connection_id FROM new_reads n WHERE n.connection_id IS NOT NULL) AS k
    WHERE NOT EXISTS (SELECT 1 FROM controller_connections c WHERE c.id = k.connection_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "timing_reads" violates foreign key constraint "timing_reads_connection_id_fkey"'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (connection_id)=(%s) is not present in table "controller_connections".', v_connection),
                  CONSTRAINT = 'timing_reads_connection_id_fkey', TABLE = 'timing_reads';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER timing_reads_references_insert AFTER INSERT ON timing_reads
    REFERENCING NEW TABLE AS new_reads FOR EACH STATEMENT EXECUTE FUNCTION timing_reads_check_references();
CREATE TRIGGER timing_reads_references_update AFTER UPDATE ON timing_reads
    REFERENCING NEW TABLE AS new_reads FOR EACH STATEMENT EXECUTE FUNCTION timing_reads_check_references();

-- A key that reads still refer to cannot be changed (the foreign keys' NO ACTION).
CREATE FUNCTION refuse_referenced_key_change(p_table TEXT, p_constraint TEXT, p_key TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'update on table "%" violates foreign key constraint "%" on table "timing_reads"', p_table, p_constraint
        USING ERRCODE = 'foreign_key_violation',
              DETAIL = format('Key %s is still referenced from table "timing_reads".', p_key),
              CONSTRAINT = p_constraint, TABLE = p_table;
END;
$$;

-- Sessions: deleting one deletes its reads (CASCADE); its key cannot move under its reads.
CREATE FUNCTION timing_sessions_delete_reads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM timing_reads r USING old_sessions o WHERE r.session_id = o.id;
    RETURN NULL;
END;
$$;

CREATE FUNCTION timing_sessions_keep_referenced_keys() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_gone RECORD;
BEGIN
    SELECT o.id, o.timing_partner_id INTO v_gone FROM old_sessions o
    WHERE NOT EXISTS (SELECT 1 FROM new_sessions n WHERE n.id = o.id AND n.timing_partner_id = o.timing_partner_id)
      AND EXISTS (SELECT 1 FROM timing_reads r WHERE r.session_id = o.id AND r.timing_partner_id = o.timing_partner_id)
    LIMIT 1;
    IF FOUND THEN
        PERFORM refuse_referenced_key_change('timing_sessions', 'timing_reads_session_and_partner_fkey',
                                             format('(id, timing_partner_id)=(%s, %s)', v_gone.id, v_gone.timing_partner_id));
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION refuse_truncate_under_reads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM timing_reads) THEN
        RAISE EXCEPTION 'cannot truncate a table referenced by timing_reads'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = format('Table "timing_reads" refers to "%s".', TG_TABLE_NAME),
                  HINT = 'Truncate table "timing_reads" at the same time.';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER timing_sessions_delete_reads AFTER DELETE ON timing_sessions
    REFERENCING OLD TABLE AS old_sessions FOR EACH STATEMENT EXECUTE FUNCTION timing_sessions_delete_reads();
CREATE TRIGGER timing_sessions_keep_referenced_keys AFTER UPDATE ON timing_sessions
    REFERENCING OLD TABLE AS old_sessions NEW TABLE AS new_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION timing_sessions_keep_referenced_keys();
CREATE TRIGGER timing_sessions_refuse_truncate AFTER TRUNCATE ON timing_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate_under_reads();

-- Locations: deleting one clears it from its reads (SET NULL). When the location goes because
-- its session does, its reads are deleted with the session, so they are not updated first.
CREATE FUNCTION timing_locations_clear_reads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE timing_reads r SET location_id = NULL
    FROM old_locations o JOIN timing_sessions s ON s.id = o.session_id
    WHERE r.session_id = o.session_id AND r.location_id = o.id;
    RETURN NULL;
END;
$$;

CREATE FUNCTION timing_locations_keep_referenced_keys() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_gone RECORD;
BEGIN
    SELECT o.id, o.session_id INTO v_gone FROM old_locations o
    WHERE NOT EXISTS (SELECT 1 FROM new_locations n WHERE n.id = o.id AND n.session_id = o.session_id)
      AND EXISTS (SELECT 1 FROM timing_reads r WHERE r.session_id = o.session_id AND r.location_id = o.id)
    LIMIT 1;
    IF FOUND THEN
        PERFORM refuse_referenced_key_change('timing_locations', 'timing_reads_location_id_fkey',
                                             format('(id, session_id)=(%s, %s)', v_gone.id, v_gone.session_id));
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER timing_locations_clear_reads AFTER DELETE ON timing_locations
    REFERENCING OLD TABLE AS old_locations FOR EACH STATEMENT EXECUTE FUNCTION timing_locations_clear_reads();
CREATE TRIGGER timing_locations_keep_referenced_keys AFTER UPDATE ON timing_locations
    REFERENCING OLD TABLE AS old_locations NEW TABLE AS new_locations
    FOR EACH STATEMENT EXECUTE FUNCTION timing_locations_keep_referenced_keys();
CREATE TRIGGER timing_locations_refuse_truncate AFTER TRUNCATE ON timing_locations
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate_under_reads();

-- Connection records: deleting one (retention) clears it from its reads (SET NULL).
CREATE FUNCTION controller_connections_clear_reads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE timing_reads r SET connection_id = NULL FROM old_connections o WHERE r.connection_id = o.id;
    RETURN NULL;
END;
$$;

CREATE FUNCTION controller_connections_keep_referenced_keys() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_gone BIGINT;
BEGIN
    SELECT o.id INTO v_gone FROM old_connections o
    WHERE NOT EXISTS (SELECT 1 FROM new_connections n WHERE n.id = o.id)
      AND EXISTS (SELECT 1 FROM timing_reads r WHERE r.connection_id = o.id)
    LIMIT 1;
    IF FOUND THEN
        PERFORM refuse_referenced_key_change('controller_connections', 'timing_reads_connection_id_fkey',
                                             format('(id)=(%s)', v_gone));
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER controller_connections_clear_reads AFTER DELETE ON controller_connections
    REFERENCING OLD TABLE AS old_connections FOR EACH STATEMENT EXECUTE FUNCTION controller_connections_clear_reads();
CREATE TRIGGER controller_connections_keep_referenced_keys AFTER UPDATE ON controller_connections
    REFERENCING OLD TABLE AS old_connections NEW TABLE AS new_connections
    FOR EACH STATEMENT EXECUTE FUNCTION controller_connections_keep_referenced_keys();
CREATE TRIGGER controller_connections_refuse_truncate AFTER TRUNCATE ON controller_connections
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate_under_reads();
