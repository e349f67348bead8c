"""FailureThrottle: repeated failures block a key for a while; memory stays bounded."""

from twisted.internet.task import Clock

from chronotrack.accounts.failure_throttle import FailureThrottle


def test_five_failures_within_the_window_block_the_key_until_the_block_ends():
    clock = Clock()
    throttle = FailureThrottle(clock, max_failures=5, window=60, block_for=300)
    assert [throttle.record_failure("10.0.0.9") for _ in range(5)] == [False] * 4 + [True]
    assert throttle.is_blocked("10.0.0.9") and not throttle.is_blocked("10.0.0.10")
    clock.advance(299)
    assert throttle.is_blocked("10.0.0.9") and throttle.retry_after("10.0.0.9") == 1
    clock.advance(1)
    assert not throttle.is_blocked("10.0.0.9")


def test_failures_spread_wider_than_the_window_never_block():
    clock = Clock()
    throttle = FailureThrottle(clock, max_failures=3, window=10, block_for=60)
    for _ in range(10):
        assert throttle.record_failure("a") is False
        clock.advance(6)
    assert not throttle.is_blocked("a")


def test_a_success_clears_the_count():
    clock = Clock()
    throttle = FailureThrottle(clock, max_failures=2)
    throttle.record_failure("a")
    throttle.record_success("a")
    assert throttle.record_failure("a") is False


def test_memory_is_bounded_to_max_keys_oldest_forgotten_first():
    throttle = FailureThrottle(Clock(), max_failures=2, max_keys=100)
    for number in range(1000):
        throttle.record_failure(f"10.0.{number // 256}.{number % 256}")
    assert len(throttle._records) == 100
    assert "10.0.3.231" in throttle._records and "10.0.0.0" not in throttle._records
