-- How each event is scored (chronotrack.results.EventSettings), edited on the results page.
-- No row means the defaults: the finish is a location named 'finish' (else the last one
-- seen), the start mat one named 'start', the gun time from the controllers' guntime
-- reads, a 60 s duplicate window, places by gun time, five-year age groups.
CREATE TABLE event_results_settings (
    timing_event_id           BIGINT PRIMARY KEY REFERENCES timing_events (id) ON DELETE CASCADE,
    timing_partner_id         BIGINT NOT NULL REFERENCES timing_partners (id) ON DELETE CASCADE,
    finish_location           TEXT CHECK (length(finish_location) BETWEEN 1 AND 100),
    -- NULL: a location named 'start' if there is one; '': no start mat (gun times only).
    start_location            TEXT CHECK (length(start_location) <= 100),
    gun_time                  TIMESTAMPTZ,
    duplicate_window_seconds  INTEGER NOT NULL DEFAULT 60 CHECK (duplicate_window_seconds BETWEEN 0 AND 86400),
    place_by                  TEXT NOT NULL DEFAULT 'gun' CHECK (place_by IN ('gun', 'chip')),
    age_group_years           INTEGER NOT NULL DEFAULT 5 CHECK (age_group_years IN (5, 10)),
    -- The web processes' results caches rebuild an event whose settings row moved on.
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

