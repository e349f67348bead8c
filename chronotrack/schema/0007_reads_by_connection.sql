-- timing_reads.connection_id references controller_connections ON DELETE SET NULL: without
-- an index, every connection record that retention deletes makes PostgreSQL scan the whole
-- of timing_reads to clear the references (and retention's own "no newer read points at
-- it" check scans it again). Most reads share a few connection ids, so the index is small.
CREATE INDEX timing_reads_by_connection ON timing_reads (connection_id);
