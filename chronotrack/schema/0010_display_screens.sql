-- Finish-line screens, each event's branding and its live messages (issue 12).
--
-- A display screen is one big screen (or phone page) an operator set up for an event: which
-- locations it shows (NULL: the event's finish location from its results settings), how long
-- each runner stays on the panel, gun or chip time, sound, and when a long queue switches to
-- a grid. Its public code makes an anonymous URL (/screen/<code>) like the public display
-- codes. layout_id names a designer layout (display_layouts); the foreign key is added when
-- that table exists.
CREATE TABLE display_screens (
    id                  BIGSERIAL PRIMARY KEY,
    timing_partner_id   BIGINT NOT NULL REFERENCES timing_partners (id) ON DELETE CASCADE,
    timing_event_id     BIGINT NOT NULL REFERENCES timing_events (id) ON DELETE CASCADE,
    name                TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    public_code         TEXT NOT NULL UNIQUE DEFAULT replace(gen_random_uuid()::text, '-', ''),
    locations           TEXT[] CHECK (locations IS NULL OR cardinality(locations) BETWEEN 1 AND 20),
    hold_seconds        NUMERIC(6, 2) NOT NULL DEFAULT 3 CHECK (hold_seconds BETWEEN 0.1 AND 600),
    time_kind           TEXT NOT NULL DEFAULT 'gun' CHECK (time_kind IN ('gun', 'chip')),
    sound               BOOLEAN NOT NULL DEFAULT false,
    grid_threshold      INTEGER NOT NULL DEFAULT 8 CHECK (grid_threshold BETWEEN 2 AND 1000),
    layout_id           BIGINT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (timing_event_id, name)
);
CREATE INDEX display_screens_by_partner ON display_screens (timing_partner_id, timing_event_id);

-- How an event looks on its screens. Images are event_images ids (the designer's table; no
-- foreign key until the branches meet).
CREATE TABLE event_branding (
    timing_event_id     BIGINT PRIMARY KEY REFERENCES timing_events (id) ON DELETE CASCADE,
    timing_partner_id   BIGINT NOT NULL REFERENCES timing_partners (id) ON DELETE CASCADE,
    display_name        TEXT CHECK (length(display_name) <= 120),
    primary_color       TEXT NOT NULL DEFAULT '#0b5fff' CHECK (primary_color ~ '^#[0-9a-f]{6}$'),
    accent_color        TEXT NOT NULL DEFAULT '#ffcc00' CHECK (accent_color ~ '^#[0-9a-f]{6}$'),
    background_color    TEXT NOT NULL DEFAULT '#0a0f1e' CHECK (background_color ~ '^#[0-9a-f]{6}$'),
    text_color          TEXT NOT NULL DEFAULT '#ffffff' CHECK (text_color ~ '^#[0-9a-f]{6}$'),
    logo_image_id       BIGINT,
    sponsor_image_ids   BIGINT[] NOT NULL DEFAULT '{}' CHECK (cardinality(sponsor_image_ids) <= 50),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- The messages an event's screens rotate through, edited live by an operator; an event with
-- none shows the hub's start-up --messages.
CREATE TABLE event_messages (
    id                  BIGSERIAL PRIMARY KEY,
    timing_event_id     BIGINT NOT NULL REFERENCES timing_events (id) ON DELETE CASCADE,
    timing_partner_id   BIGINT NOT NULL REFERENCES timing_partners (id) ON DELETE CASCADE,
    position            INTEGER NOT NULL CHECK (position BETWEEN 0 AND 99),
    message             TEXT NOT NULL CHECK (length(message) BETWEEN 1 AND 300),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX event_messages_by_event ON event_messages (timing_event_id, position);
