"""End-to-end delivery tracking, without I/O: which traced messages reached the sink, how
many times, and how long after the generator sent them.

With tracing on, the generator puts one header field in every message it sends::

    X-Locust-Smtp-Trace: run=<run id>; seq=<message number>; sent=<unix time>

``run`` is ``[A-Za-z0-9._-]{1,64}``, ``seq`` a decimal integer from 0 (at most 18
digits), ``sent`` the time it was sent in seconds, with up to 9 decimals (``time.time()``
printed with microseconds: ``1764201600.123456``). Parameters are separated by ``;``,
with optional white space around them and around ``=``; their names are
case-insensitive, and unknown ones are ignored (room to add some).

The sink may sit behind the server under test, which relays to it: the field may then
have been folded, or moved below the ``Received:`` fields the relays added. So
:func:`parse_trace` reads the whole header section (up to the first empty line),
unfolds continuation lines, matches the field name case-insensitively, and takes the
first occurrence only (a later one is ignored, even if the first is malformed).

:class:`DeliveryTracker` is fed the header section of every message the sink accepts
(:meth:`~DeliveryTracker.arrived`, with the arrival time) and keeps, per run:

- ``received``: traced messages of the run, repeats included;
- ``unique``: distinct sequence numbers; ``duplicates``: arrivals of a number already seen;
- ``gaps``: numbers from 0 up to the highest seen that have not arrived (the messages
  lost so far, or still on their way);
- the delivery latency, arrival time minus ``sent``, in microseconds, of the first
  arrival of each number (a duplicate's is not recorded) in a log-linear histogram
  (:class:`~locust_smtp.histogram.Histogram`), and ``late``: those first arrivals whose
  latency exceeds the late threshold (``--late``, 60 s by default);
- ``expected`` and ``lost`` once the count the run sent is known
  (:meth:`~DeliveryTracker.expect`, ``--expect RUN=N``): lost is expected minus unique
  (0 if more arrived than expected);
- ``first_arrival`` and ``last_arrival`` (unix times) over all its arrivals.

A message without the field, or whose field is malformed, counts as ``untraced`` (one
count for the whole sink, not per run); nothing in a header section makes the tracker
raise. A negative latency (the sink's clock behind the generator's) is recorded as 0.

Memory per run is bounded whatever the message count: sequence numbers are bits in
8 KiB pages made as they are needed (:class:`SeqBitmap`: a run of a million messages
numbered from 0 takes 128 KiB), and the histogram has at most a few thousand buckets.
The number of runs is bounded too: past :data:`MAX_RUNS`, messages of a new run count as
untraced.

:meth:`DeliveryTracker.report` is the document the sink writes with
``--delivery-report FILE`` (JSON)::

    {
      "version": 1,
      "header": "X-Locust-Smtp-Trace",
      "late_after_seconds": 60.0,
      "untraced": 1,
      "runs": [
        {
          "run": "abc",
          "received": 2001,
          "unique": 2000,
          "duplicates": 1,
          "highest_seq": 1999,
          "gaps": 0,
          "late": 0,
          "expected": 2000,
          "lost": 0,
          "latency_us": {"p50": 1234, "p90": 3012, "p99": 5678, "p999": 8890,
                         "max": 9100, "mean": 1502.3},
          "first_arrival": 1764201600.123456,
          "last_arrival": 1764201612.654321
        }
      ]
    }

``runs`` is sorted by run id. ``expected`` and ``lost`` are ``null`` when the expected
count is not known; ``highest_seq`` and ``latency_us`` are ``null`` when no message of
the run arrived (a run known only from ``--expect``), and ``first_arrival`` and
``last_arrival`` then too. Latencies are integers in microseconds (``mean`` a float); a
percentile is within 0.4% of a latency that was measured.

:meth:`DeliveryTracker.summary` is the same in short lines for the sink's count output.

>>> tracker = DeliveryTracker()
>>> header = b"X-Locust-Smtp-Trace: run=abc; seq=0; sent=1764201600.000000\\r\\n\\r\\n"
>>> tracker.arrived(header, now=1764201600.0015)
>>> tracker.arrived(b"Subject: hi\\r\\n\\r\\n", now=1764201600.002)
>>> print("\\n".join(tracker.summary()))
delivery run=abc: 1 unique, 0 duplicates, 0 gaps, p50 1.500 ms p99 1.500 ms max 1.500 ms, 0 late
delivery: 1 untraced
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TextIO

from ..histogram import Histogram

TRACE_HEADER = "X-Locust-Smtp-Trace"
"""The header field the generator adds to each message when tracing is on."""
HEAD_LIMIT = 65536
"""Most bytes of a message's start the sink keeps for the tracker: its header section,
up to and including the first empty line, cut to this length."""
LATE_AFTER = 60.0
"""Default late threshold (seconds): a message delivered later than this counts as late."""
MAX_RUNS = 10000
"""Most runs tracked at once; messages of further runs count as untraced."""
SUMMARY_RUNS = 10
"""Most runs :meth:`DeliveryTracker.summary` prints a line for (the report has them all)."""
RUN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
"""What a run id looks like."""

_NAME = TRACE_HEADER.lower().encode()
_SEQ = re.compile(r"[0-9]{1,18}\Z")
_SENT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?\Z")
_FOLD = (b" ", b"\t")
_CANONICAL = re.compile(
    rb"[ \t]*run=([A-Za-z0-9._-]{1,64});[ \t]*seq=([0-9]{1,18});[ \t]*"
    rb"sent=([0-9]{1,12}(?:\.[0-9]{1,9})?)[ \t]*\Z"
)
"""The value as the generator writes it (or folded at its spaces): a quick path, giving
what the general one would."""


def _trace_value(header_section: bytes) -> bytes | None:
    """The unfolded value of the first trace field in ``header_section`` (lines ending in
    CRLF or LF, up to the first empty one), or None."""
    lines = header_section.split(b"\n")
    for index, line in enumerate(lines):
        line = line.removesuffix(b"\r")
        if not line:
            return None  # the empty line: the end of the header section
        if line[:1] in _FOLD:
            continue  # the continuation of another field
        name, colon, value = line.partition(b":")
        if not colon or name.rstrip(b" \t").lower() != _NAME:
            continue
        parts = [value]
        for more in lines[index + 1 :]:
            more = more.removesuffix(b"\r")
            if more[:1] not in _FOLD:
                break
            parts.append(more)  # unfolding removes the line break, not the white space
        return b"".join(parts)
    return None


def parse_trace(header_section: bytes) -> tuple[str, int, float] | None:
    """(run, seq, sent) from the first ``X-Locust-Smtp-Trace`` field of a message's header
    section; None when there is none or it is malformed (a bad run id, seq or sent, a
    parameter missing, a part without ``=``, a byte that is not ASCII). Bytes after the
    header section (after the first empty line) are ignored.

    >>> parse_trace(b"Received: by relay\\r\\nx-locust-smtp-trace: run=r-1;\\r\\n"
    ...             b"\\tseq=42; sent=1764201600.5\\r\\n\\r\\nbody")
    ('r-1', 42, 1764201600.5)
    >>> parse_trace(b"X-Locust-Smtp-Trace: run=r; seq=-1; sent=1\\r\\n") is None
    True
    """
    value = _trace_value(header_section)
    if value is None:
        return None
    canonical = _CANONICAL.match(value)
    if canonical is not None:
        run, seq, sent = canonical.groups()
        return run.decode(), int(seq), float(sent)
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return None
    parameters: dict[str, str] = {}
    for part in text.split(";"):
        key, equals, item = part.partition("=")
        key = key.strip().lower()
        if not equals:
            if key:
                return None
            continue  # an empty part: a trailing ";"
        parameters.setdefault(key, item.strip())
    run = parameters.get("run", "")
    seq = parameters.get("seq", "")
    sent = parameters.get("sent", "")
    if not (RUN_ID.match(run) and _SEQ.match(seq) and _SENT.match(sent)):
        return None
    return run, int(seq), float(sent)


def _unstuffed(content: bytes) -> bytes:
    """DATA content with its dot-stuffing taken off (RFC 5321 §4.5.2)."""
    if content.startswith(b".."):
        content = content[1:]
    return content.replace(b"\n..", b"\n.")


class SeqBitmap:
    """A set of non-negative integers (sequence numbers) as bits in pages of
    :attr:`PAGE_BYTES` bytes, each made when a number in its range first comes: dense
    numbers cost a bit each, and a stray huge number one page, not a bitmap up to it.

    >>> seen = SeqBitmap()
    >>> seen.add(3), seen.add(3), 3 in seen, 4 in seen, seen.nbytes
    (True, False, True, False, 8192)
    """

    __slots__ = ("pages",)

    PAGE_BITS = 16
    """Numbers per page: 2**16 (a page of 8 KiB)."""
    PAGE_BYTES = (1 << PAGE_BITS) // 8

    def __init__(self) -> None:
        self.pages: dict[int, bytearray] = {}

    def add(self, number: int) -> bool:
        """Add ``number``; False if it was there already."""
        page = self.pages.get(number >> self.PAGE_BITS)
        if page is None:
            page = self.pages[number >> self.PAGE_BITS] = bytearray(self.PAGE_BYTES)
        bit = number & ((1 << self.PAGE_BITS) - 1)
        mask = 1 << (bit & 7)
        if page[bit >> 3] & mask:
            return False
        page[bit >> 3] |= mask
        return True

    def __contains__(self, number: int) -> bool:
        page = self.pages.get(number >> self.PAGE_BITS)
        bit = number & ((1 << self.PAGE_BITS) - 1)
        return page is not None and bool(page[bit >> 3] & (1 << (bit & 7)))

    @property
    def nbytes(self) -> int:
        """The bytes its pages take."""
        return len(self.pages) * self.PAGE_BYTES


# -- the tracker ---------------------------------------------------------------------------


class RunStats:
    """What arrived of one run."""

    __slots__ = (
        "duplicates",
        "expected",
        "first_arrival",
        "highest",
        "last_arrival",
        "late",
        "latency",
        "received",
        "seen",
        "unique",
    )

    def __init__(self) -> None:
        self.received = 0
        self.unique = 0
        self.duplicates = 0
        self.late = 0
        self.highest = -1
        """The highest sequence number seen (-1: none yet)."""
        self.seen = SeqBitmap()
        self.latency = Histogram()
        """Of each number's first arrival, in µs."""
        self.first_arrival: float | None = None
        self.last_arrival: float | None = None
        self.expected: int | None = None

    def add(self, seq: int, now: float, latency_us: int, late_us: int) -> None:
        """One arrival of ``seq`` at ``now`` (unix time), ``latency_us`` after it was sent."""
        self.received += 1
        if self.first_arrival is None or now < self.first_arrival:
            self.first_arrival = now
        if self.last_arrival is None or now > self.last_arrival:
            self.last_arrival = now
        if not self.seen.add(seq):
            self.duplicates += 1
            return
        self.unique += 1
        if seq > self.highest:
            self.highest = seq
        latency_us = max(latency_us, 0)
        self.latency.record(latency_us)
        if latency_us > late_us:
            self.late += 1

    @property
    def gaps(self) -> int:
        """Numbers from 0 to the highest seen that have not arrived."""
        return self.highest + 1 - self.unique

    @property
    def lost(self) -> int | None:
        """Expected minus unique (at least 0); None when the expected count is unknown."""
        return None if self.expected is None else max(self.expected - self.unique, 0)

    def report(self, run: str) -> dict[str, Any]:
        latency = self.latency
        return {
            "run": run,
            "received": self.received,
            "unique": self.unique,
            "duplicates": self.duplicates,
            "highest_seq": self.highest if self.highest >= 0 else None,
            "gaps": self.gaps,
            "late": self.late,
            "expected": self.expected,
            "lost": self.lost,
            "latency_us": {
                "p50": latency.percentile(50),
                "p90": latency.percentile(90),
                "p99": latency.percentile(99),
                "p999": latency.percentile(99.9),
                "max": latency.max,
                "mean": round(latency.mean, 1),
            }
            if latency.count
            else None,
            "first_arrival": self.first_arrival,
            "last_arrival": self.last_arrival,
        }

    def summary(self, run: str) -> str:
        line = (
            f"delivery run={run}: {self.unique} unique, {self.duplicates} duplicates, "
            f"{self.gaps} gaps"
        )
        latency = self.latency
        if latency.count:
            line += (
                f", p50 {latency.percentile(50) / 1000:.3f} ms"
                f" p99 {latency.percentile(99) / 1000:.3f} ms"
                f" max {latency.max / 1000:.3f} ms"
            )
        line += f", {self.late} late"
        if self.expected is not None:
            line += f", {self.lost} lost of {self.expected} expected"
        return line


class DeliveryTracker:
    """Per-run counts of the traced messages the sink accepted (see the module's
    docstring); one per sink, fed by every session."""

    def __init__(
        self,
        late_after: float = LATE_AFTER,
        expected: Mapping[str, int] | None = None,
        log: TextIO | None = None,
    ) -> None:
        self.log = log
        """``--delivery-log``: one JSON line per traced arrival (run, seq, sent, arrived,
        us), for latency over time; flushed with each report."""
        self.late_after = late_after
        """Seconds after which a delivery counts as late."""
        self._late_us = round(late_after * 1_000_000)
        self.runs: dict[str, RunStats] = {}
        self.untraced = 0
        """Accepted messages without a (well-formed) trace field, in all."""
        for run, count in (expected or {}).items():
            self.expect(run, count)

    def expect(self, run: str, count: int) -> None:
        """Run ``run`` sent ``count`` messages: report how many of them are lost. Raises
        ValueError for a run id the header could not carry or a negative count."""
        if not RUN_ID.match(run):
            raise ValueError(f"bad run id: {run!r}")
        if count < 0:
            raise ValueError(f"bad message count: {count}")
        stats = self.runs.get(run)
        if stats is None:
            stats = self.runs[run] = RunStats()
        stats.expected = count

    def arrived(self, content: bytes, now: float, *, dot_stuffed: bool = False) -> None:
        """One accepted message: ``content`` is its start, at least its header section
        (as the sink keeps it: up to the first empty line, at most :data:`HEAD_LIMIT`
        bytes), ``now`` the unix time its end arrived. ``dot_stuffed``: ``content`` is as
        sent after DATA. A message with several recipients (an LMTP transaction too) is
        one arrival."""
        if content.lower().find(_NAME) < 0:  # most messages: one pass over a copy
            self.untraced += 1
            return
        found = parse_trace(_unstuffed(content) if dot_stuffed else content)
        if found is None:
            self.untraced += 1
            return
        run, seq, sent = found
        stats = self.runs.get(run)
        if stats is None:
            if len(self.runs) >= MAX_RUNS:
                self.untraced += 1
                return
            stats = self.runs[run] = RunStats()
        latency = round((now - sent) * 1_000_000)
        stats.add(seq, now, latency, self._late_us)
        if self.log is not None:
            self.log.write(
                f'{{"run":"{run}","seq":{seq},"sent":{sent:.6f},"arrived":{now:.6f},'
                f'"us":{max(latency, 0)}}}\n'
            )

    def report(self) -> dict[str, Any]:
        """The ``--delivery-report`` document (see the module's docstring)."""
        return {
            "version": 1,
            "header": TRACE_HEADER,
            "late_after_seconds": self.late_after,
            "untraced": self.untraced,
            "runs": [self.runs[run].report(run) for run in sorted(self.runs)],
        }

    def summary(self) -> list[str]:
        """Short lines for the sink's count output: one per run (at most
        :data:`SUMMARY_RUNS`), then the untraced count; nothing when no run is known
        (tracing off: the usual case)."""
        if not self.runs:
            return []
        runs = sorted(self.runs)
        lines = [self.runs[run].summary(run) for run in runs[:SUMMARY_RUNS]]
        if len(runs) > SUMMARY_RUNS:
            lines.append(f"delivery: {len(runs) - SUMMARY_RUNS} more runs in the report")
        if self.untraced:
            lines.append(f"delivery: {self.untraced} untraced")
        return lines
