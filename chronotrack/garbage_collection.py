"""How the collector and display processes set Python's cyclic garbage collector, once at start-up.

At full speed every read leaves two container objects alive for a while (its TagRead and
JournalEntry, until stored), so with the default thresholds a young-generation collection ran
every few hundred reads and the older generations, holding everything start-up built (Twisted,
Klein, Jinja templates, modules), were traversed again and again: about a quarter of the
collector's CPU per read in ``bench.collector_costs``. Reads hold no reference cycles, so
collecting less often frees nothing later that matters; reference counting frees them as before.

The display process (and the collector's own web layer) keeps results caches: a big race's
scored runners are some 400,000 long-lived objects, and a full collection walks them all (about
95 ms). With the default thresholds that showed as /results outliers at 10 million rows (p99
124 ms); with these, the same bench measured 10 ms.
"""

from __future__ import annotations

import gc

# Young objects allowed before a collection (default 700), then how many collections of one
# generation before the next is collected too (defaults 10 and 10).
THRESHOLDS = (10_000, 20, 10)


def settle_after_start_up() -> None:
    """Move what start-up built out of the collector's way, and collect less often.

    ``gc.freeze`` puts every object alive now into the permanent generation, which no
    collection traverses: they live as long as the process anyway. Call it once the services
    are built, before reads arrive.
    """
    gc.collect()  # garbage of start-up goes now, not frozen with the rest
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
