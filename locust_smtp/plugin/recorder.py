"""Every stage's response times, recorded at 1 µs and fed to Locust in batches.

A message is five to nine stages, and one Locust request event costs about
5 µs here: firing one per stage was the largest single cost of a run. The
recorder takes each stage sample in about half a microsecond instead
(benchmarks/bench_histogram.py):

* **Successes are batched.** A :class:`StageRecord` per request type and stage
  adds each sample to a small histogram and to its count, sum, minimum,
  maximum and bytes. A greenlet hands the batch to Locust's ``RequestStats``
  just after every whole second (so Locust's requests-per-second stay in the
  right second), and so do a user's stop, the test's stop and anything that
  reads the figures (the summary, the SMTP tab, the CSV and HTML reports).
  Locust's rows, charts, ``--csv``/``--html``/``--json`` and worker reports
  then show the same names and counts as with one event per sample. Count,
  sum (so the mean), minimum, maximum and bytes are exact; Locust's own
  rounded response-time buckets are filled from the microsecond buckets, so a
  sample within 0.4% of one of Locust's rounding boundaries may be counted in
  the neighbouring Locust bucket.
* **Failures are events.** A failed stage is fired as a Locust request event
  at once, with its exception, response and context, as before.
* **Percentiles at 1 µs.** Every sample, batched or fired, ends in the stage's
  :class:`~.histogram.Histogram`; the summary, the SMTP tab, ``PREFIX_smtp.csv``
  and the HTML report print p50, p90, p99, p99.9 and max from it. A batch joins
  the histogram when it joins Locust's statistics, so the two always hold the
  same samples.

Workers send their histograms with each statistics report and start again
from zero; the master merges them, so its percentiles are those of one
process that saw every sample.

Which samples are events is the users' choice (:data:`REQUEST_EVENTS`,
``SmtpUser.request_events``, ``--smtp-request-events``).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import gevent

from ..histogram import SUB_BUCKET_BITS, Histogram, bucket_range

if TYPE_CHECKING:
    from locust.env import Environment

REQUEST_EVENTS = ("auto", "stage", "failures")
"""``stage``: one Locust request event per stage sample, as Locust users expect (every
``events.request`` listener sees every stage). ``failures``: only failed stages are
events; successes go to Locust's statistics in batches. ``auto`` (the default): ``stage``
when something besides Locust's own statistics listens to ``events.request`` (a
locustfile's listener, Locust's OpenTelemetry or request logger), else ``failures``."""

_ATTRIBUTE = "smtp_recorder"
_REPORT_KEY = "smtp_stage_times"
_EXACT = 2 << SUB_BUCKET_BITS
_SHIFT_BASE = SUB_BUCKET_BITS + 1
_TO_US = (1000.0).__mul__  # ms -> µs as ms * 1000.0 (the same float), mapped in C
FLUSH_LAG = 0.002
"""Seconds after each whole second at which the batches go to Locust."""


class StageRecord:
    """One request type's stage: the samples not yet in Locust's statistics, and the
    histogram of every sample that is."""

    __slots__ = (
        "histogram",
        "length",
        "name",
        "recorder",
        "replies",
        "request_type",
        "seen",
        "times",
    )

    def __init__(self, request_type: str, name: str, recorder: StageRecorder | None = None) -> None:
        self.recorder = recorder
        """Started when a batch begins, so that it is flushed within a second."""
        self.request_type = request_type
        self.name = name
        self.histogram = Histogram()
        """Every sample Locust's statistics hold, in microseconds."""
        self.times: list[float] = []
        """The batch not yet in Locust's statistics, in ms as measured: sorted into
        buckets when taken, once a second, not at every sample."""
        self.length = 0
        self.replies: dict[int, list[Any]] = {}
        """id(reply) -> [reply, n]: the replies at this stage not yet sorted into codes
        (:mod:`.codes` does, when the codes are read; the parser hands out the same
        :class:`Reply` for the same bytes, so this stays small)."""
        self.seen: list[Any] = []
        """The replies of the successes not yet in :attr:`replies` (an append each, on
        the hot path): :meth:`fold_replies` counts them, once a second."""

    @property
    def count(self) -> int:
        return len(self.times)

    def add(self, response_time: float, length: int) -> None:
        """A successful sample of ``response_time`` ms (the hot path: an append)."""
        times = self.times
        times.append(response_time)
        self.length += length
        if len(times) == 1 and self.recorder is not None:  # the first of a batch
            self.recorder.start()

    def fold_replies(self) -> None:
        """Count :attr:`seen` into :attr:`replies` (by id, in C: a second's replies are
        a handful of distinct objects)."""
        seen = self.seen
        if not seen:
            return
        self.seen = []
        replies = self.replies
        by_id = dict(zip(map(id, seen), seen, strict=True))
        for key, n in Counter(map(id, seen)).items():
            counted = replies.get(key)
            if counted is None:
                replies[key] = [by_id[key], n]
            else:
                counted[1] += n

    def record_event(self, response_time: float) -> None:
        """A sample that went to Locust as an event: only the histogram."""
        self.histogram.record(int(response_time * 1000.0))

    def take(self, environment: Environment, second: int) -> None:
        """Move the batch into Locust's statistics (its requests in ``second``) and into
        the histogram."""
        self.fold_replies()
        times = self.times
        if not times:
            return
        from locust.stats import StatsEntry, bucket_response_time

        count = len(times)
        total, low, high = sum(times), min(times), max(times)
        # a second's samples to whole microseconds and counted in C; Histogram.record's
        # bucket then once per distinct microsecond (a few thousand), written out
        buckets: dict[int, int] = {}
        for us, n in Counter(map(int, map(_TO_US, times))).items():
            if us < _EXACT:
                index = us if us > 0 else 0
            else:
                shift = us.bit_length() - _SHIFT_BASE
                index = (shift << SUB_BUCKET_BITS) + (us >> shift)
            buckets[index] = buckets.get(index, 0) + n
        stats = environment.stats
        batch = StatsEntry(stats, self.name, self.request_type)
        batch.num_requests = count
        batch.total_response_time = total  # type: ignore[assignment]
        batch.min_response_time = low  # type: ignore[assignment]
        batch.max_response_time = high  # type: ignore[assignment]
        batch.total_content_length = self.length
        batch.num_reqs_per_sec[second] = count
        batch.last_request_timestamp = time.time()
        histogram = self.histogram
        histogram_counts = histogram.counts
        locust_buckets = batch.response_times
        for index, n in buckets.items():
            bottom, top = bucket_range(index)
            locust_buckets[bucket_response_time((bottom + top) / 2000.0)] += n
            histogram_counts[index] = histogram_counts.get(index, 0) + n
        low_us, high_us = max(int(low * 1000.0), 0), int(high * 1000.0)
        histogram.min = low_us if not histogram.count else min(histogram.min, low_us)
        histogram.max = max(histogram.max, high_us)
        histogram.count += count
        histogram.total += round(total * 1000.0)
        stats.entries[(self.name, self.request_type)].extend(batch)
        stats.total.extend(batch)
        self.times = []
        self.length = 0

    def clear(self) -> None:
        """Forget the batch, the histogram and the replies (a new test, *Reset stats*)."""
        self.times = []
        self.length = 0
        self.histogram = Histogram()
        self.replies = {}
        self.seen = []


class StageRecorder:
    """One process's stage records, by request type and stage name."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.tables: dict[str, dict[str, StageRecord]] = {}
        """``{request type: {stage: record}}``; users keep their request type's dict."""
        self._flusher: gevent.Greenlet[Any, Any] | None = None

    def table(self, request_type: str) -> dict[str, StageRecord]:
        """One request type's records by stage (users look their stage up here)."""
        table = self.tables.get(request_type)
        if table is None:
            table = self.tables[request_type] = {}
        return table

    def record(self, request_type: str, stage: str) -> StageRecord:
        table = self.table(request_type)
        record = table.get(stage)
        if record is None:
            record = table[stage] = StageRecord(request_type, stage, self)
        return record

    def histograms(self, request_type: str) -> dict[str, Histogram]:
        """The histograms of one request type, by stage, with every batch taken first."""
        self.flush()
        return {stage: r.histogram for stage, r in self.tables.get(request_type, {}).items()}

    def flush(self, second: int | None = None) -> int:
        """Hand every batch to Locust's statistics, counted as requests of ``second``
        (default: now); returns how many batches there were."""
        if second is None:
            second = int(time.time())
        batches = 0
        for table in self.tables.values():
            for record in table.values():
                if record.times:
                    record.take(self.environment, second)
                    batches += 1
        return batches

    def clear(self) -> None:
        for table in self.tables.values():
            for record in table.values():
                record.clear()

    # -- the greenlet that flushes every second ---------------------------------------------

    def start(self) -> None:
        """Flush just after every whole second while samples come (idempotent; a batch's
        first sample calls it)."""
        if self._flusher is None:
            self._flusher = gevent.spawn(self._flush_every_second)

    def stop(self) -> None:
        """Flush and stop the greenlet (the test stopped; the next user starts it again)."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None and flusher is not gevent.getcurrent():
            flusher.kill(block=False)
        self.flush()

    def _flush_every_second(self) -> None:
        """Until a second passes with no sample: the next batch starts it again."""
        try:
            while True:
                now = time.time()
                gevent.sleep(1.0 - now % 1.0 + FLUSH_LAG)
                # what was recorded since the last flush happened in the second just ended
                if not self.flush(int(time.time() - FLUSH_LAG) - 1):
                    return
        finally:
            if self._flusher is gevent.getcurrent():
                self._flusher = None

    # -- shipping between processes ---------------------------------------------------------

    def ship(self) -> dict[str, dict[str, dict[str, object]]]:
        """The histograms as a worker report carries them (then empty here); batches not
        yet in Locust's statistics stay for the next report, with their histogram."""
        shipped: dict[str, dict[str, dict[str, object]]] = {}
        for request_type, table in self.tables.items():
            times = {}
            for stage, record in table.items():
                if record.histogram.count:
                    times[stage] = record.histogram.to_dict()
                    record.histogram = Histogram()
            if times:
                shipped[request_type] = times
        return shipped

    def merge(self, shipped: dict[str, dict[str, dict[str, object]]]) -> None:
        """Add a worker's shipped histograms."""
        for request_type, times in shipped.items():
            for stage, data in times.items():
                self.record(request_type, stage).histogram.merge(Histogram.from_dict(data))


def recorder_of(environment: Environment) -> StageRecorder:
    """The recorder of ``environment`` (created when first asked for)."""
    recorder: StageRecorder | None = getattr(environment, _ATTRIBUTE, None)
    if recorder is None:
        recorder = StageRecorder(environment)
        setattr(environment, _ATTRIBUTE, recorder)
    return recorder


def flush(environment: Environment, **_kwargs: Any) -> None:
    """Every batch to Locust's statistics now (before anything reads them)."""
    recorder: StageRecorder | None = getattr(environment, _ATTRIBUTE, None)
    if recorder is not None:
        recorder.flush()


def other_request_listeners(environment: Environment) -> bool:
    """Whether anything besides Locust's own statistics listens to ``events.request``."""
    handlers = getattr(environment.events.request, "_handlers", None)
    if handlers is None:
        return True  # cannot tell: keep every event
    return any(
        not (
            getattr(h, "__module__", "") == "locust.runners"
            and getattr(h, "__qualname__", "").endswith("on_request")
        )
        for h in handlers
    )


def wants_stage_events(mode: str, environment: Environment) -> bool:
    """Whether a user in request-event ``mode`` fires one event per stage."""
    if mode not in REQUEST_EVENTS:
        from locust.exception import LocustError

        raise LocustError(f"bad request events: {mode!r} (one of {', '.join(REQUEST_EVENTS)})")
    if mode == "auto":
        return other_request_listeners(environment)
    return mode == "stage"


def install(environment: Environment, **_kwargs: Any) -> None:
    """``events.init`` listener: flush at test stop and before the end-of-run reports;
    workers ship their histograms with each statistics report, the master merges them."""
    events = environment.events

    def report_to_master(data: dict[str, Any], **_kw: Any) -> None:
        shipped = recorder_of(environment).ship()
        if shipped:
            data[_REPORT_KEY] = shipped

    def worker_report(data: dict[str, Any], **_kw: Any) -> None:
        shipped = data.get(_REPORT_KEY)
        if shipped:
            recorder_of(environment).merge(shipped)

    events.report_to_master.add_listener(report_to_master)  # type: ignore[no-untyped-call]
    events.worker_report.add_listener(worker_report)  # type: ignore[no-untyped-call]
    events.reset_stats.add_listener(lambda **_kw: recorder_of(environment).clear())  # type: ignore[no-untyped-call]

    def spawning_complete(**_kw: Any) -> None:
        # --reset-stats: Locust resets its statistics here without firing reset_stats
        # (its listener, registered before this one, has run)
        if environment.reset_stats:
            recorder_of(environment).clear()

    events.spawning_complete.add_listener(spawning_complete)  # type: ignore[no-untyped-call]
    events.test_stop.add_listener(lambda **_kw: recorder_of(environment).stop())  # type: ignore[no-untyped-call]


def reset(environment: Environment, **_kwargs: Any) -> None:
    """A new test (``test_start``): every histogram and batch empty."""
    recorder: StageRecorder | None = getattr(environment, _ATTRIBUTE, None)
    if recorder is not None:
        recorder.clear()
