"""Where reads are kept: the journal, the PostgreSQL store and its pool, the schema, the embedded server."""
