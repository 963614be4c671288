#!/usr/bin/env python3
"""What a stage sample costs in the recorder (issue #10's budget: about 1 µs).

    python benchmarks/bench_histogram.py [--samples 1000000] [--runs 5]

Prints, medians of the runs, per sample over a realistic mix of stage times
(LAN replies of 100 µs to 2 ms, a tail to 1 s):

* Histogram.record: one sample into a microsecond histogram;
* StageRecord.add + flush: what a batched stage costs (locust_smtp.plugin.recorder):
  the sample, and its share of handing the batch to Locust's statistics once a
  second (here once per 20,000 samples, about a second of a busy run's stage);
* SmtpUser._on_stage, batched and with one event per stage: the whole path a
  stage's report takes in a user (request_events "failures" and "stage");
* Locust events.request.fire: one Locust request event into a real Environment's
  statistics, what every stage cost before the recorder.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

from locust_smtp.histogram import Histogram


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


def _environment() -> Any:
    from locust import User
    from locust.env import Environment

    class Quiet(User):
        abstract = True

    environment = Environment(user_classes=[Quiet])
    environment.create_local_runner()
    return environment


def time_stage_record(values: list[int]) -> float:
    from locust_smtp.plugin.recorder import StageRecord

    environment = _environment()
    record = StageRecord("SMTP", "RCPT")
    add = record.add
    times = [v / 1000.0 for v in values]
    start = time.perf_counter()
    for i, value in enumerate(times):
        add(value, 30)
        if i % 20_000 == 19_999:
            record.take(environment, int(time.time()))
    record.take(environment, int(time.time()))
    elapsed = time.perf_counter() - start
    assert environment.stats.entries[("RCPT", "SMTP")].num_requests == len(values)
    return elapsed / len(values)


def time_user_on_stage(values: list[int], mode: str) -> float:
    from locust_smtp import SmtpUser

    environment = _environment()

    class Bench(SmtpUser):
        host = "smtp://127.0.0.1:25"
        request_events = mode

    user = Bench(environment)
    on_stage = user._on_stage
    times = [v / 1000.0 for v in values]
    start = time.perf_counter()
    for value in times:
        on_stage("MAIL", 0.0, value, 30, None, None)
    user._recorder.flush()
    elapsed = time.perf_counter() - start
    assert environment.stats.entries[("MAIL", "SMTP")].num_requests == len(values)
    return elapsed / len(values)


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
    batched = statistics.median(time_stage_record(values) for _ in range(args.runs))
    user_batched = statistics.median(
        time_user_on_stage(event_values, "failures") for _ in range(args.runs)
    )
    user_events = statistics.median(
        time_user_on_stage(event_values, "stage") for _ in range(args.runs)
    )
    print(f"{'Histogram.record':40} {record * 1e6:10.3f}")
    print(f"{'StageRecord.add + flush once a second':40} {batched * 1e6:10.3f}")
    print(f"{'SmtpUser._on_stage, batched':40} {user_batched * 1e6:10.3f}")
    print(f"{'SmtpUser._on_stage, one event per stage':40} {user_events * 1e6:10.3f}")
    print(f"{'Locust events.request.fire':40} {event * 1e6:10.3f}")


if __name__ == "__main__":
    main()
