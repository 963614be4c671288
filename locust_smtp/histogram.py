"""Log-linear latency histograms at microsecond resolution (the HDR histogram's layout).

Locust buckets response times to whole milliseconds below 100 ms, which on a
LAN, where MAIL, RCPT and DATA take 0.1-1 ms, leaves nothing to read. A
:class:`Histogram` keeps every sample in microseconds: exactly below 256 µs,
then 128 buckets per power of two, so that any percentile it reports is within
1/256 (0.4%: 80 µs at 20 ms) of a value that was recorded. Recording is one call doing integer
arithmetic and a dict increment; histograms merge by adding counts, so a
master merging its workers' histograms gets the percentiles of one process
that saw every sample.

No I/O and no Locust here: the recorder that feeds Locust builds on it, and the sink
measures delivery latencies with it (:mod:`locust_smtp.sink.delivery`).

>>> h = Histogram()
>>> for us in (100, 200, 300, 400, 1000):
...     h.record(us)
>>> h.count, h.min, h.max, h.percentile(50)   # the median: exact below 256 µs
(5, 100, 1000, 300)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

SUB_BUCKET_BITS = 7
"""128 buckets per power of two above the exact range: relative error at most 1/256
(32 buckets, 1/64, put a 20 ms reply's median in a bucket 512 µs wide)."""
_EXACT = 2 << SUB_BUCKET_BITS  # values below 256 have a bucket each


def bucket_of(value: int) -> int:
    """The bucket index of a non-negative integer ``value`` (microseconds)."""
    if value < _EXACT:
        return value if value > 0 else 0
    shift = value.bit_length() - SUB_BUCKET_BITS - 1
    return (shift << SUB_BUCKET_BITS) + (value >> shift)


def bucket_range(index: int) -> tuple[int, int]:
    """The smallest and largest value that fall in bucket ``index``."""
    if index < _EXACT:
        return index, index
    shift = (index >> SUB_BUCKET_BITS) - 1
    mantissa = index - (shift << SUB_BUCKET_BITS)
    return mantissa << shift, ((mantissa + 1) << shift) - 1


class Histogram:
    """Counts of samples (integer microseconds) by bucket, plus exact count, sum, min, max."""

    __slots__ = ("count", "counts", "max", "min", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        """Samples per bucket index (only buckets that have any)."""
        self.count = 0
        self.total = 0
        """The sum of every sample, for an exact mean."""
        self.min = 0
        self.max = 0

    def record(self, value: int) -> None:
        """Add one sample of ``value`` microseconds (negative values count as 0)."""
        index = bucket_of(value)
        counts = self.counts
        counts[index] = counts.get(index, 0) + 1
        if self.count == 0 or value < self.min:
            self.min = max(value, 0)
        if value > self.max:
            self.max = value
        self.count += 1
        self.total += value

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s samples to this one (as if this one had seen them)."""
        if not other.count:
            return
        counts = self.counts
        for index, n in other.counts.items():
            counts[index] = counts.get(index, 0) + n
        self.min = other.min if not self.count else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    def percentile(self, percent: float) -> int:
        """The value (µs) at or below which ``percent`` % of the samples lie: the middle of
        the bucket holding that rank, clamped to the exact min and max. 0 when empty."""
        if not self.count:
            return 0
        rank = max(1, -(-self.count * percent // 100))  # ceil, at least the first sample
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                low, high = bucket_range(index)
                return min(max((low + high) // 2, self.min), self.max)
        return self.max

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    # -- shipping between processes --------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        """A form Locust's worker reports can carry (msgpack: string keys, plain values)."""
        return {
            "counts": [[index, n] for index, n in self.counts.items()],
            "count": self.count,
            "total": self.total,
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Histogram:
        histogram = cls()
        pairs: Iterable[tuple[int, int]] = data["counts"]  # type: ignore[assignment]
        histogram.counts = {int(index): int(n) for index, n in pairs}
        histogram.count = int(data["count"])  # type: ignore[call-overload]
        histogram.total = int(data["total"])  # type: ignore[call-overload]
        histogram.min = int(data["min"])  # type: ignore[call-overload]
        histogram.max = int(data["max"])  # type: ignore[call-overload]
        return histogram
