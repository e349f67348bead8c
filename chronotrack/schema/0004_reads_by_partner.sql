-- A partner's newest reads (the /reads page, recent-reads, the stream's catch-up) walk
-- this index backwards from the newest id, instead of the whole table's id order
-- filtered down to one partner, which is slow for a partner with few reads on a busy hub.
CREATE INDEX timing_reads_by_partner ON timing_reads (timing_partner_id, id DESC);
