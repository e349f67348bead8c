"""twistd plugins: `twistd chronotrack-collector` and `twistd chronotrack-display`."""

from twisted.application.service import ServiceMaker

chronotrack_collector = ServiceMaker(
    "ChronoTrack collector",
    "chronotrack.tap",
    "Collects CTP01 reads from ChronoTrack controllers into PostgreSQL, with status API "
    "and race display.",
    "chronotrack-collector",
)

chronotrack_display = ServiceMaker(
    "ChronoTrack race display",
    "web.tap",
    "Serves the race display pages, JSON feeds and live stream from the timing database.",
    "chronotrack-display",
)
