"""The microsecond histograms the stage statistics will be kept in (issue #10)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from locust_smtp.histogram import Histogram, bucket_of, bucket_range

SAMPLES = st.lists(st.integers(min_value=0, max_value=600_000_000), min_size=1, max_size=300)
PERCENTS = st.sampled_from([0.1, 1, 25, 50, 90, 95, 99, 99.9, 100])


@given(st.integers(min_value=0, max_value=2**40))
def test_every_value_falls_in_its_bucket(value: int) -> None:
    low, high = bucket_range(bucket_of(value))
    assert low <= value <= high
    assert high - low <= low // 128  # the relative width behind the 1/256 error


def test_buckets_tile_the_line_without_gaps() -> None:
    previous_high = -1
    for index in range(bucket_of(2**32) + 1):
        low, high = bucket_range(index)
        assert low == previous_high + 1 and high >= low
        previous_high = high


def nearest_rank(samples: list[int], percent: float) -> int:
    ordered = sorted(samples)
    rank = max(1, math.ceil(len(ordered) * percent / 100))
    return ordered[rank - 1]


@given(SAMPLES, PERCENTS)
def test_percentiles_are_within_1_256th_of_the_true_one(samples: list[int], percent: float) -> None:
    histogram = Histogram()
    for value in samples:
        histogram.record(value)
    true = nearest_rank(samples, percent)
    got = histogram.percentile(percent)
    assert abs(got - true) <= true / 256 + 1e-9
    assert (histogram.count, histogram.min, histogram.max) == (
        len(samples),
        min(samples),
        max(samples),
    )
    assert histogram.mean == sum(samples) / len(samples)


@given(st.lists(SAMPLES, min_size=1, max_size=5), PERCENTS)
def test_merged_histograms_equal_one_that_saw_every_sample(
    parts: list[list[int]], percent: float
) -> None:
    whole = Histogram()
    merged = Histogram()
    for part in parts:
        piece = Histogram()
        for value in part:
            piece.record(value)
            whole.record(value)
        # shipped as a worker would send it, then merged as the master does
        merged.merge(Histogram.from_dict(piece.to_dict()))
    assert merged.counts == whole.counts
    assert (merged.count, merged.total, merged.min, merged.max) == (
        whole.count,
        whole.total,
        whole.min,
        whole.max,
    )
    assert merged.percentile(percent) == whole.percentile(percent)


def test_an_empty_histogram_reports_zeros_and_merges_as_nothing() -> None:
    empty = Histogram()
    assert (empty.percentile(99), empty.mean, empty.count) == (0, 0.0, 0)
    one = Histogram()
    one.record(284)
    one.merge(empty)
    empty.merge(one)
    assert (empty.count, empty.min, empty.max) == (1, 284, 284)
