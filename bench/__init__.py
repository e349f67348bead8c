"""The benchmark suite: ``make bench`` (full) and ``make bench QUICK=1`` (quick).

One module per job: ``suite`` (entry point and the mode's counts), ``ingest``,
``baseline`` (old one-insert-per-read writer and the COPY ceiling), ``latency``,
``memory``, ``web_at_scale``, ``fanout``; ``clients`` holds the asyncio controller and
SSE clients the latency and fan-out parts share; ``profiling`` the optional py-spy
sampling (``--profile``); ``report`` the pure parts (percentiles,
targets, the table, RESULTS.md). Process helpers come from ``tests/processes.py``.
Targets are printed beside figures, never asserted.
"""
