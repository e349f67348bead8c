-- Images an operator uploads for an event's screens (logos, backgrounds, sponsors), and the
-- display layouts drawn in the designer. Images are validated and re-encoded before they
-- get here (chronotrack.display.images); they are served by their SHA-256 (/images/<sha>.<ext>)
-- and referred to everywhere else by id.
CREATE TABLE event_images (
    id                 BIGSERIAL PRIMARY KEY,
    timing_partner_id  BIGINT NOT NULL REFERENCES timing_partners (id) ON DELETE CASCADE,
    timing_event_id    BIGINT NOT NULL REFERENCES timing_events (id) ON DELETE CASCADE,
    original_name      TEXT NOT NULL CHECK (length(original_name) <= 200),
    content_type       TEXT NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp')),
    width              INTEGER NOT NULL CHECK (width BETWEEN 1 AND 4096),
    height             INTEGER NOT NULL CHECK (height BETWEEN 1 AND 4096),
    byte_size          INTEGER NOT NULL CHECK (byte_size > 0),
    sha256             TEXT NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    data               BYTEA NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The same picture uploaded twice to one event is one image.
    UNIQUE (timing_event_id, sha256)
);
CREATE INDEX event_images_by_sha256 ON event_images (sha256);

CREATE TABLE display_layouts (
    id                 BIGSERIAL PRIMARY KEY,
    timing_partner_id  BIGINT NOT NULL REFERENCES timing_partners (id) ON DELETE CASCADE,
    timing_event_id    BIGINT NOT NULL REFERENCES timing_events (id) ON DELETE CASCADE,
    name               TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    layout             JSONB NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (timing_event_id, name)
);
