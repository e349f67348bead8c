"""PendingNumbers behaves exactly like a set of ints, whatever the order of additions and
removals, and keeps a controller's numbers in order as one run instead of one entry each."""

from __future__ import annotations

import random
import sys

import pytest

from chronotrack.storage.pending_numbers import PendingNumbers
from chronotrack.storage.watermarks import contiguous_through


def check_same(numbers: PendingNumbers, expected: set[int]) -> None:
    assert len(numbers) == len(expected)
    assert bool(numbers) == bool(expected)
    assert sorted(numbers) == sorted(expected)
    for probe in range(-2, 70):
        assert (probe in numbers) == (probe in expected), probe


@pytest.mark.parametrize("seed", range(40))
def test_random_additions_and_removals_match_a_set(seed):
    chooser = random.Random(seed)
    numbers, expected = PendingNumbers(), set()
    for _ in range(400):
        number = chooser.randrange(0, 64)
        if chooser.random() < 0.55:
            numbers.add(number)
            expected.add(number)
        else:
            numbers.discard(number)
            expected.discard(number)
        check_same(numbers, expected)
    copied = numbers.copy()
    numbers.add(1000)
    check_same(copied, expected)


def test_a_stored_read_from_the_middle_of_the_run_splits_it():
    numbers = PendingNumbers(range(1, 11))
    numbers.discard(4)
    check_same(numbers, set(range(1, 11)) - {4})
    numbers.discard(8)
    check_same(numbers, set(range(1, 11)) - {4, 8})
    numbers.add(4)
    numbers.add(8)
    check_same(numbers, set(range(1, 11)))


def test_resume_points_read_it_like_the_set_it_replaces():
    numbers = PendingNumbers([5, 6, 7, 9, 10])
    assert contiguous_through(4, numbers) == 7
    assert contiguous_through(8, numbers) == 10
    assert contiguous_through(2, numbers) == 2


def test_numbers_in_order_cost_the_same_however_many_there_are():
    """200,000 waiting reads of one controller location: a few hundred bytes, not megabytes."""
    numbers = PendingNumbers()
    for number in range(1, 200_001):
        numbers.add(number)
    for number in range(1, 100_001):
        numbers.discard(number)
    assert len(numbers) == 100_000
    assert sys.getsizeof(numbers) + sys.getsizeof(numbers._others or ()) < 1_000
    assert numbers._others is None
