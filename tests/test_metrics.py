"""``/metrics`` on the status port: Prometheus text that follows the collector's counters."""

from __future__ import annotations

import urllib.request
from collections import Counter
from types import SimpleNamespace

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from chronotrack.metrics import CollectorMetrics
from tests.processes import CollectorProcess, run_simulator, wait_for


def scrape(port: int) -> dict[str, dict[tuple, float]]:
    """Every sample of /metrics, by sample name then sorted label pairs; parsed by prometheus_client."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode("utf-8")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def test_metrics_rise_by_exactly_the_reads_a_controller_sent(tmp_path, pg_dsn):
    """Real twistd: counters, histograms and gauges before and after a simulator run."""
    collector = CollectorProcess(tmp_path, dsn=pg_dsn, web=True).start()
    try:
        before = scrape(collector.status_port)
        assert value(before, "chronotrack_database_up") == 1
        assert value(before, "chronotrack_stream_clients") == 0
        assert "chronotrack_stream_clients" in before, "the in-process web layer's streams are reported"

        run_simulator(collector.ctp01_port, "--locations", "start,finish", "--reads", "300", "--rate", "0",
                      "--malformed-every", "50", "--linger", "0.5", "--quiet")
        wait_for(lambda: collector.status()["total_reads"] == 600, 30, "600 reads stored")
        after = scrape(collector.status_port)
        status = collector.status()
    finally:
        collector.stop()

    def rise(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert rise("chronotrack_reads_stored_total") == 600
    assert rise("chronotrack_reads_received_total") == 600
    assert rise("chronotrack_reads_duplicate_total") == 0
    rejected = {dict(labels)["reason"]: count for labels, count in after["chronotrack_lines_rejected_total"].items()}
    assert rejected == status["rejected_by_reason"] and sum(rejected.values()) > 0
    # Histograms are observed once per batch: their sum is the reads written.
    assert rise("chronotrack_database_batch_reads_sum") == 600
    batches = rise("chronotrack_database_batch_reads_count")
    assert 1 <= batches <= 600
    assert rise("chronotrack_database_flush_seconds_count") == batches
    assert value(after, "chronotrack_database_flush_seconds_bucket", le="+Inf") == batches
    assert value(after, "chronotrack_controllers_connected") == 0
    assert value(after, "chronotrack_reads_waiting") == 0
    assert value(after, "chronotrack_database_up") == 1
    assert value(after, "chronotrack_journal_size_bytes") > 0
    assert value(after, "chronotrack_authentication_failures_total") == 0


def test_counters_and_names_follow_prometheus_conventions():
    """Counters end in _total, units are base units, and the stream gauge is absent without a web layer."""
    figures = {"reads_received": 7, "reads_stored": 5, "duplicates_skipped": 2, "reads_waiting": 3,
               "reads_set_aside": 0, "journal_pending": 3, "controllers_paused": False,
               "database_connected": True, "current_session": 1}
    collector = SimpleNamespace(
        store=SimpleNamespace(figures=lambda: figures, journal=None),
        factory=SimpleNamespace(open_connections={object(), object()}, authentication_failures=4,
                                rejections=SimpleNamespace(by_kind=Counter(too_long=2, not_utf8=1),
                                                           not_stored=0, closed_for_garbage=1,
                                                           reads_clock_suspect=0),
                                admission=SimpleNamespace(refused=Counter(max_connections=6))),
        database_service=SimpleNamespace(database=None, schema_ready=True))
    metrics = CollectorMetrics(collector, process_metrics=False)
    metrics.observe_batch(5, 0.02)
    families = {family.name: family for family in
                text_string_to_metric_families(generate_latest(metrics.registry).decode())}
    for family in families.values():
        assert family.name.startswith("chronotrack_"), family.name
        assert family.documentation, family.name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), family.name
    assert "chronotrack_stream_clients" not in families
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in families.values() for s in family.samples}
    assert samples[("chronotrack_controllers_connected", ())] == 2
    assert samples[("chronotrack_reads_stored_total", ())] == 5
    assert samples[("chronotrack_lines_rejected_total", (("reason", "too_long"),))] == 2
    assert samples[("chronotrack_authentication_failures_total", ())] == 4
    assert samples[("chronotrack_connections_refused_total", (("reason", "max_connections"),))] == 6
    assert samples[("chronotrack_database_batch_reads_sum", ())] == 5
    assert samples[("chronotrack_database_flush_seconds_count", ())] == 1
    metrics.stream_clients = lambda: 3
    assert b"chronotrack_stream_clients 3.0" in generate_latest(metrics.registry)
