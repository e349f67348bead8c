-- Two indexes of timing_reads ascending instead of descending: the same queries, about half
-- the pages, less work for every stored read.
--
-- timing_reads_by_time (read_timestamp DESC) and timing_reads_by_partner (timing_partner_id,
-- id DESC) were declared in the order their queries read them, newest first. But reads
-- arrive oldest first: every new entry went to the FIRST position of the index (or of its
-- partner's range). A B-tree packs a page to its fill factor only when the rightmost page
-- splits; any other page splits in half, and here the half holding the older entries never
-- receives another one. Both indexes stayed about half empty for good. At 200,000 reads of
-- the 4-controller bench, by_partner took 1,381 pages instead of 773. At 10 million reads
-- stored in order, by_time took 385 MB instead of 214 and by_partner 539 MB instead of 301.
-- Each of those splits is also written to the WAL (about 25 bytes of 840 per read), and
-- each half-empty page is one more for the cache and for every backup.
--
-- Declared ascending, each new entry goes to the right-hand end, and PostgreSQL scans an index
-- backward as cheaply as forward:
--   SELECT * FROM timing_reads ORDER BY read_timestamp DESC LIMIT 3     (the operators' psql query)
--   ... WHERE timing_partner_id BETWEEN p AND p ORDER BY timing_partner_id DESC, id DESC
--                                                                       (a partner's newest reads)
-- both walk the index from its end, without a sort (web/queries.py Scope.newest_first says
-- "partner DESC" now; tests/test_read_integrity.py checks both plans).
--
-- Rebuilding takes a while on a big table (10 s for 10 million reads on the bench's 2-core
-- machine) and holds back writers meanwhile; the collector keeps the reads it receives in its
-- journal and writes them once the schema is up to date.
DROP INDEX timing_reads_by_time;
CREATE INDEX timing_reads_by_time ON timing_reads (read_timestamp);
DROP INDEX timing_reads_by_partner;
CREATE INDEX timing_reads_by_partner ON timing_reads (timing_partner_id, id);
