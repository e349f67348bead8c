-- One hub for many timing companies ("timing partners", as the operators' production
-- database calls them). Everything that existed before belongs to the 'default' partner.
-- Events run side by side: one active session per partner and event.

CREATE TABLE timing_partners (
    id          BIGSERIAL PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO timing_partners (slug, name) VALUES ('default', 'Default timing partner');

-- An event as a partner's controllers name it: the id a controller reports with
-- geteventinfo, or its name when it has no id ('' when it reports neither).
CREATE TABLE timing_events (
    id                 BIGSERIAL PRIMARY KEY,
    timing_partner_id  BIGINT NOT NULL REFERENCES timing_partners (id) ON DELETE CASCADE,
    event_key          TEXT NOT NULL,
    event_name         TEXT,
    -- The public display link (/display/<slug>) works only while public_display is on.
    display_slug       TEXT NOT NULL UNIQUE DEFAULT replace(gen_random_uuid()::text, '-', ''),
    public_display     BOOLEAN NOT NULL DEFAULT false,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (timing_partner_id, event_key)
);

-- Sessions: one active per event (no longer one for the whole server).
ALTER TABLE timing_sessions
    ADD COLUMN timing_partner_id BIGINT REFERENCES timing_partners (id) ON DELETE CASCADE,
    ADD COLUMN timing_event_id BIGINT REFERENCES timing_events (id) ON DELETE CASCADE;
INSERT INTO timing_events (timing_partner_id, event_key, event_name)
SELECT partner.id, keyed.event_key, max(keyed.event_name)
FROM (SELECT coalesce(nullif(event_id, ''), nullif(event_name, ''), '') AS event_key, event_name
      FROM timing_sessions) AS keyed
CROSS JOIN timing_partners AS partner
WHERE partner.slug = 'default'
GROUP BY partner.id, keyed.event_key;
UPDATE timing_sessions AS s SET timing_partner_id = e.timing_partner_id, timing_event_id = e.id
FROM timing_events AS e
WHERE e.event_key = coalesce(nullif(s.event_id, ''), nullif(s.event_name, ''), '');
ALTER TABLE timing_sessions
    ALTER COLUMN timing_partner_id SET NOT NULL,
    ALTER COLUMN timing_event_id SET NOT NULL;
DROP INDEX timing_sessions_one_active;
-- At most one active session per event: concurrent collectors cannot open two.
CREATE UNIQUE INDEX timing_sessions_one_active ON timing_sessions (timing_event_id) WHERE status = 'active';
CREATE INDEX timing_sessions_by_partner ON timing_sessions (timing_partner_id, id DESC);

ALTER TABLE timing_locations ADD COLUMN timing_partner_id BIGINT REFERENCES timing_partners (id) ON DELETE CASCADE;
UPDATE timing_locations AS l SET timing_partner_id = s.timing_partner_id
FROM timing_sessions AS s WHERE s.id = l.session_id;
ALTER TABLE timing_locations ALTER COLUMN timing_partner_id SET NOT NULL;

ALTER TABLE timing_reads ADD COLUMN timing_partner_id BIGINT REFERENCES timing_partners (id) ON DELETE CASCADE;
UPDATE timing_reads AS r SET timing_partner_id = s.timing_partner_id
FROM timing_sessions AS s WHERE s.id = r.session_id;
ALTER TABLE timing_reads ALTER COLUMN timing_partner_id SET NOT NULL;
-- Resume points are looked up per partner: one partner's stream ids never match another's.
DROP INDEX timing_reads_by_stream;
CREATE INDEX timing_reads_by_stream
    ON timing_reads (timing_partner_id, stream_id, location_name, sequence_number DESC);

-- Connections and rejected lines: the partner is known once the controller authorized
-- (at once when the hub asks for no authentication).
ALTER TABLE controller_connections
    ADD COLUMN timing_partner_id BIGINT REFERENCES timing_partners (id) ON DELETE CASCADE,
    ADD COLUMN user_id TEXT;
UPDATE controller_connections SET timing_partner_id = (SELECT id FROM timing_partners WHERE slug = 'default');
ALTER TABLE rejected_lines ADD COLUMN timing_partner_id BIGINT REFERENCES timing_partners (id) ON DELETE CASCADE;
UPDATE rejected_lines SET timing_partner_id = (SELECT id FROM timing_partners WHERE slug = 'default');

-- The roster belongs to an event: bib 101 in one race is not bib 101 in another.
-- Runners imported before go to the event of the newest session (or an unnamed event).
ALTER TABLE participants
    ADD COLUMN timing_partner_id BIGINT REFERENCES timing_partners (id) ON DELETE CASCADE,
    ADD COLUMN timing_event_id BIGINT REFERENCES timing_events (id) ON DELETE CASCADE;
INSERT INTO timing_events (timing_partner_id, event_key)
SELECT id, '' FROM timing_partners
WHERE slug = 'default' AND EXISTS (SELECT 1 FROM participants) AND NOT EXISTS (SELECT 1 FROM timing_events);
UPDATE participants SET
    timing_event_id = (SELECT coalesce((SELECT timing_event_id FROM timing_sessions ORDER BY id DESC LIMIT 1),
                                       (SELECT id FROM timing_events ORDER BY id LIMIT 1))),
    timing_partner_id = (SELECT id FROM timing_partners WHERE slug = 'default');
ALTER TABLE participants
    ALTER COLUMN timing_partner_id SET NOT NULL,
    ALTER COLUMN timing_event_id SET NOT NULL,
    DROP CONSTRAINT participants_pkey,
    ADD PRIMARY KEY (timing_event_id, bib);

-- Controller logins. CTP01's hmac and seed modes need the password itself, so it is
-- kept encrypted (Fernet) with a server key that lives outside the database.
CREATE TABLE controller_credentials (
    id                  BIGSERIAL PRIMARY KEY,
    timing_partner_id   BIGINT NOT NULL REFERENCES timing_partners (id) ON DELETE CASCADE,
    user_id             TEXT NOT NULL UNIQUE CHECK (user_id ~ '^[A-Za-z0-9._@-]{1,64}$'),
    password_encrypted  TEXT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- People who sign in to the web pages; passwords as argon2id hashes only.
CREATE TABLE operators (
    id                 BIGSERIAL PRIMARY KEY,
    timing_partner_id  BIGINT NOT NULL REFERENCES timing_partners (id) ON DELETE CASCADE,
    email              TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%_@_%'),
    password_hash      TEXT NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    disabled_at        TIMESTAMPTZ
);

-- Signed-in browsers: only a hash of the cookie's token is kept.
CREATE TABLE web_sessions (
    id           BIGSERIAL PRIMARY KEY,
    operator_id  BIGINT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    csrf_token   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);

-- Bearer tokens for the JSON API and /stream: only a hash is kept.
CREATE TABLE api_tokens (
    id                 BIGSERIAL PRIMARY KEY,
    timing_partner_id  BIGINT NOT NULL REFERENCES timing_partners (id) ON DELETE CASCADE,
    name               TEXT NOT NULL DEFAULT '',
    token_hash         TEXT NOT NULL UNIQUE,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at       TIMESTAMPTZ,
    revoked_at         TIMESTAMPTZ
);

-- The active session of a partner's event, opened (with its event) when there is none.
-- One rule for every writer: the event key is the controller's event id, else its name.
-- A NULL partner is the default partner (reads journaled before partners existed).
CREATE FUNCTION open_timing_session(p_partner BIGINT, p_event_id TEXT, p_event_name TEXT)
RETURNS TABLE (session_id BIGINT, partner_id BIGINT) LANGUAGE plpgsql AS $$
DECLARE
    v_key TEXT := coalesce(nullif(p_event_id, ''), nullif(p_event_name, ''), '');
    v_partner BIGINT := p_partner;
    v_event BIGINT;
    v_session BIGINT;
BEGIN
    IF v_partner IS NULL THEN
        SELECT id INTO v_partner FROM timing_partners WHERE slug = 'default';
    END IF;
    SELECT id INTO v_event FROM timing_events WHERE timing_partner_id = v_partner AND event_key = v_key;
    IF v_event IS NULL THEN
        INSERT INTO timing_events (timing_partner_id, event_key, event_name)
        VALUES (v_partner, v_key, nullif(p_event_name, ''))
        ON CONFLICT DO NOTHING RETURNING id INTO v_event;
        IF v_event IS NULL THEN  -- another collector created it at the same moment
            SELECT id INTO v_event FROM timing_events WHERE timing_partner_id = v_partner AND event_key = v_key;
        END IF;
    ELSIF coalesce(p_event_name, '') <> '' THEN
        UPDATE timing_events SET event_name = p_event_name WHERE id = v_event AND event_name IS NULL;
    END IF;
    SELECT id INTO v_session FROM timing_sessions WHERE timing_event_id = v_event AND status = 'active';
    IF v_session IS NULL THEN
        INSERT INTO timing_sessions (session_name, event_name, event_id, status, timing_partner_id, timing_event_id)
        VALUES ('Session ' || to_char(now(), 'YYYY-MM-DD HH24:MI'), nullif(p_event_name, ''),
                nullif(p_event_id, ''), 'active', v_partner, v_event)
        ON CONFLICT DO NOTHING RETURNING id INTO v_session;
        IF v_session IS NULL THEN
            SELECT id INTO v_session FROM timing_sessions WHERE timing_event_id = v_event AND status = 'active';
        END IF;
    ELSIF coalesce(p_event_name, '') <> '' THEN
        UPDATE timing_sessions SET event_name = p_event_name WHERE id = v_session AND event_name IS NULL;
    END IF;
    session_id := v_session;
    partner_id := v_partner;
    RETURN NEXT;
END;
$$;
