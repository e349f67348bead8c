-- Views for read-only query tools (a natural-language query assistant, PostgREST), and
-- the bookkeeping of the roles `chronotrack readonly-role` makes for them.
--
-- A read-only role gets SELECT on these views and nothing else: views read the tables
-- with their owner's rights, so the role needs no grant on any table, and the tables
-- holding credentials, password hashes, tokens and web sessions stay out of its reach.
-- The views are security barriers: a role's own functions in a WHERE clause cannot see
-- rows the view's partner filter leaves out.

-- Roles made by `chronotrack readonly-role`; timing_partner_id NULL means every partner.
-- No foreign key on purpose: deleting a partner must not turn its role into one that sees
-- every partner (ids are never reused, so a deleted partner's role sees nothing).
CREATE TABLE readonly_roles (
    role_name          TEXT PRIMARY KEY,
    timing_partner_id  BIGINT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Nothing sensitive is readable through PUBLIC, whatever a server's defaults were.
REVOKE ALL ON controller_credentials, operators, web_sessions, api_tokens, readonly_roles FROM PUBLIC;

-- The partner filter of every view: a role listed in readonly_roles sees its partner's
-- rows (or all, when its partner is NULL); other roles (the hub's own user, an
-- administrator) are not restricted here, they can read the tables anyway.

-- Each read with its runner (from the event's roster, when the bib is in it) and event.
CREATE VIEW reads_with_runners WITH (security_barrier = true) AS
SELECT r.id                 AS read_id,
       partner.slug         AS partner,
       e.event_key,
       e.event_name,
       r.session_id,
       r.location_name,
       r.sequence_number,
       r.tag_code           AS bib,
       p.first_name,
       p.last_name,
       p.gender,
       p.age,
       p.division,
       p.team,
       r.read_time,
       r.read_timestamp,
       r.lap_count,
       r.reader_id,
       r.received_at,
       r.clock_suspect
FROM timing_reads r
JOIN timing_sessions s ON s.id = r.session_id
JOIN timing_events e ON e.id = s.timing_event_id
JOIN timing_partners partner ON partner.id = r.timing_partner_id
LEFT JOIN participants p ON p.timing_event_id = s.timing_event_id AND p.bib = r.tag_code
WHERE coalesce((SELECT m.timing_partner_id IS NULL OR m.timing_partner_id = r.timing_partner_id
                FROM readonly_roles m WHERE m.role_name = current_user), true);

-- Each runner's most recent read per event: where everyone was last seen.
CREATE VIEW latest_reads WITH (security_barrier = true) AS
SELECT DISTINCT ON (event_key, partner, bib)
       read_id, partner, event_key, event_name, location_name, bib, first_name, last_name,
       read_time, read_timestamp, lap_count, received_at
FROM reads_with_runners
ORDER BY event_key, partner, bib, read_timestamp DESC, read_id DESC;

-- Per event: how many reads and runners, the first and last read, and the locations.
CREATE VIEW event_summary WITH (security_barrier = true) AS
SELECT partner.slug                                   AS partner,
       e.event_key,
       e.event_name,
       count(r.id)                                    AS reads,
       count(DISTINCT r.tag_code) FILTER (WHERE r.tag_code <> 'guntime') AS runners,
       min(r.read_timestamp)                          AS first_read,
       max(r.read_timestamp)                          AS last_read,
       coalesce(array_agg(DISTINCT r.location_name) FILTER (WHERE r.location_name IS NOT NULL),
                '{}')                                 AS locations
FROM timing_events e
JOIN timing_partners partner ON partner.id = e.timing_partner_id
LEFT JOIN timing_sessions s ON s.timing_event_id = e.id
LEFT JOIN timing_reads r ON r.session_id = s.id
WHERE coalesce((SELECT m.timing_partner_id IS NULL OR m.timing_partner_id = e.timing_partner_id
                FROM readonly_roles m WHERE m.role_name = current_user), true)
GROUP BY partner.slug, e.id, e.event_key, e.event_name;
