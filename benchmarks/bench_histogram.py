#!/usr/bin/env python3
"""What a stage sample costs in the microsecond histogram (issue #10's budget: about 1 µs).

    python benchmarks/bench_histogram.py [--samples 1000000] [--runs 5]

Prints, medians of the runs: the cost of Histogram.record per sample over a
realistic mix of stage times (LAN replies of 100 µs to 2 ms, a tail to 1 s),
and for comparison the cost of one Locust request event (events.request.fire
into a real Environment's statistics) per sample.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from locust_smtp.plugin.histogram import Histogram


def samples(n: int) -> list[int]:
    rng = random.Random(9)
    out = [int(rng.lognormvariate(6.2, 0.6)) for _ in range(n)]  # median about 500 µs
    for i in range(0, n, 1000):
        out[i] = rng.randint(100_000, 1_000_000)  # a slow tail
    return out


def time_record(values: list[int]) -> float:
    histogram = Histogram()
    record = histogram.record
    start = time.perf_counter()
    for value in values:
        record(value)
    return (time.perf_counter() - start) / len(values)


def time_locust_event(values: list[int]) -> float:
    from locust import User
    from locust.env import Environment

    class Quiet(User):
        abstract = True

    environment = Environment(user_classes=[Quiet])
    environment.create_local_runner()
    fire = environment.events.request.fire
    start = time.perf_counter()
    for value in values:
        fire(
            request_type="SMTP",
            name="RCPT",
            response_time=value / 1000.0,
            response_length=0,
            response=None,
            context={},
            exception=None,
            start_time=0.0,
        )
    return (time.perf_counter() - start) / len(values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    values = samples(args.samples)
    record = statistics.median(time_record(values) for _ in range(args.runs))
    event_values = values[: max(1, args.samples // 10)]
    event = statistics.median(time_locust_event(event_values) for _ in range(args.runs))
    print(f"samples: {args.samples}; runs: {args.runs}; medians")
    print(f"{'operation':40} {'us/sample':>10}")
    print(f"{'Histogram.record':40} {record * 1e6:10.3f}")
    print(f"{'Locust events.request.fire':40} {event * 1e6:10.3f}")


if __name__ == "__main__":
    main()
