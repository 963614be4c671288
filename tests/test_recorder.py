"""The stage recorder: batches into Locust's statistics, microsecond histograms, worker merge."""

from __future__ import annotations

import csv
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import gevent
import pytest
from locust.env import Environment
from locust.stats import bucket_response_time
from servers import LOCUST_SMTP, our_sink, smtp_sink

from locust_smtp import SmtpUser
from locust_smtp.histogram import Histogram
from locust_smtp.plugin.recorder import (
    StageRecord,
    install,
    recorder_of,
    wants_stage_events,
)


def _environment(distributed: bool = False) -> Environment:
    from locust import User
    from locust.stats import setup_distributed_stats_event_listeners

    class Quiet(User):
        abstract = True

    environment = Environment(user_classes=[Quiet])
    environment.create_local_runner()
    if distributed:  # what a worker or master runner adds: statistics travel in reports
        setup_distributed_stats_event_listeners(environment.events, environment.stats)
    return environment


def test_a_batch_reaches_locusts_statistics_whole() -> None:
    """Count, sum, min, max, bytes and the second are exact; Locust's rounded buckets and
    the microsecond histogram hold every sample."""
    environment = _environment()
    record = StageRecord("SMTP", "MAIL")
    times = [0.087, 0.25, 1.3, 42.0, 0.25, 150.5]
    for ms in times:
        record.add(ms, 30)
    record.take(environment, 1_700_000_000)
    entry = environment.stats.entries[("MAIL", "SMTP")]
    assert entry.num_requests == len(times)
    assert entry.total_response_time == pytest.approx(sum(times))
    assert entry.min_response_time == min(times)
    assert entry.max_response_time == max(times)
    assert entry.total_content_length == 30 * len(times)
    assert dict(entry.num_reqs_per_sec) == {1_700_000_000: len(times)}
    expected: dict[int, int] = {}
    for ms in times:
        key = bucket_response_time(ms)
        expected[key] = expected.get(key, 0) + 1
    assert dict(entry.response_times) == expected
    assert environment.stats.total.num_requests == len(times)
    assert record.histogram.count == len(times)
    assert record.histogram.min == 87
    assert record.histogram.max == 150_500
    assert record.count == 0 and not record.times  # taken: the next batch starts empty


def test_request_events_auto_follows_the_listeners() -> None:
    environment = _environment()
    assert not wants_stage_events("auto", environment)  # only Locust's statistics listen
    assert wants_stage_events("stage", environment)
    assert not wants_stage_events("failures", environment)
    environment.events.request.add_listener(lambda **_kw: None)
    assert wants_stage_events("auto", environment)
    assert not wants_stage_events("failures", environment)


@pytest.mark.parametrize("mode", ["failures", "stage", "auto"])
def test_what_a_request_listener_sees_in_each_mode(mode: str) -> None:
    """failures: only the failed stages (and failed messages); stage and auto (a listener
    is registered): every stage. Locust's statistics are the same in every mode."""
    seen: list[tuple[str, bool]] = []

    class Sender(SmtpUser):
        request_events = mode
        reuse_connection = True

    with smtp_sink("-f", "rcpt") as address:  # every RCPT refused: 500
        Sender.host = address
        environment = Environment(user_classes=[Sender])
        environment.create_local_runner()  # Locust's statistics listener
        environment.events.request.add_listener(
            lambda name, exception, **_kw: seen.append((name, exception is not None))
        )
        user = Sender(environment)
        for _ in range(3):
            user.send_message()
        user.on_stop()
    stats = {
        name: (e.num_requests, e.num_failures)
        for (name, kind), e in environment.stats.entries.items()
        if kind == "SMTP"
    }
    assert stats == {
        "connect": (1, 0),
        "banner": (1, 0),
        "HELO": (1, 0),
        "MAIL": (3, 0),
        "RCPT": (3, 3),
        "RSET": (3, 0),
        "QUIT": (1, 0),
        "message": (3, 3),
    }
    failures = [("RCPT", True), ("message", True)] * 3
    if mode == "failures":
        assert seen == failures
    else:
        assert len(seen) == sum(n for n, _ in stats.values())
        assert [s for s in seen if s[1]] == failures


class _Counting(SmtpUser):
    """Counts every stage report it makes, to compare with Locust's statistics."""

    abstract = True
    made: dict[str, int] = {}

    def _on_stage(self, stage: str, *args: Any) -> None:
        self.made[stage] = self.made.get(stage, 0) + 1
        super()._on_stage(stage, *args)


def _locust_counts(environment: Environment) -> dict[str, int]:
    return {
        name: e.num_requests
        for (name, kind), e in environment.stats.entries.items()
        if kind == "SMTP" and e.num_requests
    }


def test_no_sample_is_lost_when_users_are_killed_mid_run() -> None:
    """Users stopped by Locust in the middle of transactions (replies take 5 ms): every
    stage they reported is in Locust's statistics and in the histograms, once."""

    class Killed(_Counting):
        made: dict[str, int] = {}
        reuse_connection = True

    with our_sink("--delay", "0.005") as sink:
        Killed.host = sink.address
        environment = Environment(user_classes=[Killed])
        runner = environment.create_local_runner()
        runner.start(5, spawn_rate=100)
        with gevent.Timeout(20):
            while Killed.made.get("message", 0) < 100:
                gevent.sleep(0.005)
        runner.stop()  # kills the 5 users wherever they are
        runner.quit()
    locust = _locust_counts(environment)
    assert locust == Killed.made
    histograms = recorder_of(environment).histograms("SMTP")
    assert {stage: h.count for stage, h in histograms.items() if h.count} == Killed.made


def test_no_sample_is_lost_when_a_run_ends_between_flushes() -> None:
    """A run shorter than a second: the last batches reach Locust as the users stop."""

    class Short(_Counting):
        made: dict[str, int] = {}

    with smtp_sink() as address:
        Short.host = address
        environment = Environment(user_classes=[Short])
        environment.create_local_runner()
        recorder = recorder_of(environment)
        recorder.start = lambda: None  # type: ignore[method-assign]  # no second went by
        user = Short(environment)
        for _ in range(20):
            user.send_message()
        assert _locust_counts(environment) == {}  # all still batched
        user.on_stop()
    assert _locust_counts(environment) == Short.made
    assert Short.made["message"] == 20


def _fake_worker(samples: dict[str, list[float]]) -> dict[str, Any]:
    """A worker process's report: its recorder fed ``samples`` (ms), then one report."""
    environment = _environment(distributed=True)
    install(environment)
    recorder = recorder_of(environment)
    for stage, times in samples.items():
        record = recorder.record("SMTP", stage)
        for ms in times:
            record.add(ms, 10)
    recorder.flush()
    data: dict[str, Any] = {}
    environment.events.report_to_master.fire(client_id="w", data=data)
    return data


def test_the_master_merges_worker_histograms_into_the_whole_runs_percentiles() -> None:
    rng = random.Random(10)
    worker_samples = [
        {"MAIL": [rng.lognormvariate(-1.2, 0.5) for _ in range(n)], "RCPT": [0.3] * n}
        for n in (700, 1300, 50)
    ]
    master = _environment(distributed=True)
    install(master)
    for samples in worker_samples:
        master.events.worker_report.fire(client_id="w", data=_fake_worker(samples))
    merged = recorder_of(master).histograms("SMTP")
    for stage in ("MAIL", "RCPT"):
        whole = Histogram()
        for samples in worker_samples:
            for ms in samples[stage]:
                whole.record(int(ms * 1000.0))
        got = merged[stage]
        assert got.count == whole.count == sum(len(s[stage]) for s in worker_samples)
        assert (got.min, got.max) == (whole.min, whole.max)
        for q in (50, 90, 99, 99.9, 100):
            assert got.percentile(q) == whole.percentile(q), (stage, q)
        # and Locust's rows on the master count the same samples
        assert master.stats.entries[(stage, "SMTP")].num_requests == whole.count


def test_a_worker_ships_its_histograms_once() -> None:
    data = _fake_worker({"MAIL": [1.0, 2.0]})
    assert data["smtp_stage_times"]["SMTP"]["MAIL"]["count"] == 2
    environment = _environment()
    install(environment)
    recorder = recorder_of(environment)
    recorder.record("SMTP", "MAIL").add(1.0, 0)
    first: dict[str, Any] = {}
    second: dict[str, Any] = {}
    environment.events.report_to_master.fire(client_id="w", data=first)  # not yet flushed
    recorder.flush()
    environment.events.report_to_master.fire(client_id="w", data=second)
    environment.events.report_to_master.fire(client_id="w", data=(third := {}))
    # the histogram travels with the statistics that hold the same samples, once
    assert "smtp_stage_times" not in first
    assert second["smtp_stage_times"]["SMTP"]["MAIL"]["count"] == 1
    assert "smtp_stage_times" not in third


def test_processes_2_percentiles_come_from_every_workers_histograms(tmp_path: Path) -> None:
    """A real run over two worker processes: the master's PREFIX_smtp.csv has the exact
    counts and percentiles from the merged microsecond histograms (sub-millisecond digits,
    within the sink's 5 ms delay and the measurement's error)."""
    prefix = tmp_path / "run"
    locust_options = ["--processes", "2", "--csv", str(prefix)]
    with our_sink("--delay", "0.005") as sink:
        proc = subprocess.run(
            [*LOCUST_SMTP, "-s", "4", "-d", "-m", "200", sink.address, "--", *locust_options],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    assert sink.counts["messages"] == 200
    with open(f"{prefix}_smtp.csv", newline="") as f:
        figures = {row[0]: row[1] for row in csv.reader(f)}
    for stage in ("MAIL", "RCPT", "DATA", "end of data"):
        assert int(figures[f"SMTP {stage} count"]) == 200
        p50, p99 = float(figures[f"SMTP {stage} p50 ms"]), float(figures[f"SMTP {stage} p99 ms"])
        # Locust's own percentiles are whole milliseconds here; a histogram bucket's
        # middle never is
        assert p50 != int(p50), figures
        # (three processes and the sink share 2 cores here: the tail is loose)
        assert 5.0 <= p50 <= 7.0 and p50 <= p99 <= 60.0, (stage, p50, p99)


def test_the_flusher_feeds_locust_every_second_while_samples_come() -> None:
    environment = _environment()
    recorder = recorder_of(environment)
    record = recorder.record("SMTP", "MAIL")
    record.add(0.5, 0)
    deadline = time.monotonic() + 3
    while not environment.stats.entries.get(("MAIL", "SMTP")) and time.monotonic() < deadline:
        gevent.sleep(0.05)
    entry = environment.stats.entries[("MAIL", "SMTP")]
    assert entry.num_requests == 1
    second = next(iter(entry.num_reqs_per_sec))
    assert time.time() - 2.1 <= second <= time.time()
    with gevent.Timeout(3):  # a second with no sample: the flusher ends by itself
        while recorder._flusher is not None:
            gevent.sleep(0.05)


def test_reset_stats_after_the_ramp_up_resets_the_histograms_too() -> None:
    """--reset-stats: Locust resets its statistics when spawning completes (without the
    reset_stats event); the histograms and any pending batch start again with them."""
    environment = _environment()
    environment.reset_stats = True
    install(environment)
    recorder = recorder_of(environment)
    record = recorder.record("SMTP", "MAIL")
    for _ in range(100):
        record.add(50.0, 0)
    recorder.flush()
    for _ in range(3):
        record.add(50.0, 0)  # still pending at the reset
    environment.events.spawning_complete.fire(user_count=1)
    for _ in range(100):
        record.add(0.3, 0)
    histogram = recorder.histograms("SMTP")["MAIL"]
    entry = environment.stats.entries[("MAIL", "SMTP")]
    assert entry.num_requests == histogram.count == 100
    assert entry.max_response_time == 0.3 and histogram.max == 300
