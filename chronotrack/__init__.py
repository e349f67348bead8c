"""ChronoTrack timing hub: a CTP01 collector, a PostgreSQL store and a live race display."""

__version__ = "0.1.0"
