-- Results: a cached event's results are rebuilt when its roster changes, and every results
-- request asks whether it did. Counting the roster and taking its newest updated_at read
-- every runner of the event (50,000 in a big race) on every request; a version per event,
-- bumped by statement-level triggers on participants, answers with one index probe and
-- notices any writer (a roster import, the chronotrack roster command, psql) and deletions.
-- Rosters change rarely and never in the read path: ingest pays nothing.

CREATE TABLE roster_versions (
    timing_event_id BIGINT PRIMARY KEY REFERENCES timing_events (id) ON DELETE CASCADE,
    version         BIGINT NOT NULL
);

INSERT INTO roster_versions (timing_event_id, version)
SELECT timing_event_id, 1 FROM participants GROUP BY timing_event_id;

-- Only events that still exist: a deleted event's runners go with it (ON DELETE CASCADE), and
-- its version row with them.
CREATE FUNCTION roster_versions_bump_events(p_events BIGINT[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO roster_versions AS v (timing_event_id, version)
    SELECT e.id, 1 FROM timing_events e WHERE e.id = ANY (p_events)
    ORDER BY e.id
    ON CONFLICT (timing_event_id) DO UPDATE SET version = v.version + 1
$$;

CREATE FUNCTION roster_versions_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM roster_versions_bump_events(ARRAY(SELECT DISTINCT timing_event_id FROM new_runners));
    RETURN NULL;
END;
$$;

CREATE FUNCTION roster_versions_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM roster_versions_bump_events(ARRAY(SELECT timing_event_id FROM new_runners
                                              UNION SELECT timing_event_id FROM old_runners));
    RETURN NULL;
END;
$$;

CREATE FUNCTION roster_versions_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM roster_versions_bump_events(ARRAY(SELECT DISTINCT timing_event_id FROM old_runners));
    RETURN NULL;
END;
$$;

CREATE FUNCTION roster_versions_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE roster_versions SET version = version + 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER participants_roster_version_insert AFTER INSERT ON participants
    REFERENCING NEW TABLE AS new_runners FOR EACH STATEMENT EXECUTE FUNCTION roster_versions_after_insert();
CREATE TRIGGER participants_roster_version_update AFTER UPDATE ON participants
    REFERENCING OLD TABLE AS old_runners NEW TABLE AS new_runners
    FOR EACH STATEMENT EXECUTE FUNCTION roster_versions_after_update();
CREATE TRIGGER participants_roster_version_delete AFTER DELETE ON participants
    REFERENCING OLD TABLE AS old_runners FOR EACH STATEMENT EXECUTE FUNCTION roster_versions_after_delete();
CREATE TRIGGER participants_roster_version_truncate AFTER TRUNCATE ON participants
    FOR EACH STATEMENT EXECUTE FUNCTION roster_versions_after_truncate();
