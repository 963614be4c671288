"""Delivery tracking in the bundled sink: the trace header parsed, arrivals counted per run
(duplicates, gaps, late, lost, latency percentiles), the header section kept as the
content comes in (DATA and BDAT, in any pieces), and the sink's --delivery-report over
SMTP on TCP and LMTP on a UNIX socket."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from servers import our_sink

from locust_smtp import SmtpClient, data_payload
from locust_smtp.protocol._writers import BdatWriter
from locust_smtp.sink import Counters, Session, SinkConfig, delivery
from locust_smtp.sink.delivery import (
    HEAD_LIMIT,
    DeliveryTracker,
    SeqBitmap,
    parse_trace,
)

SENT = 1764201600.123456


def traced(run: str, seq: int, sent: float, body: bytes = b"body\r\n") -> bytes:
    """A message as the generator sends it with tracing on (before dot-stuffing)."""
    return (
        b"From: <a@x>\r\nTo: <b@y>\r\nSubject: test\r\n"
        + f"X-Locust-Smtp-Trace: run={run}; seq={seq}; sent={sent:.6f}\r\n".encode()
        + b"\r\n"
        + body
    )


# -- parse_trace -------------------------------------------------------------------------


def test_a_plain_trace_header() -> None:
    section = b"Subject: x\r\nX-Locust-Smtp-Trace: run=abc; seq=7; sent=1764201600.123456\r\n"
    assert parse_trace(section + b"\r\nbody") == ("abc", 7, 1764201600.123456)


def test_folded_below_received_lines_in_any_case_with_lf_endings() -> None:
    """As a relay may pass it on: moved below its Received: fields, folded at white
    space, the name in another case, bare LF line ends."""
    section = (
        b"Received: from relay.example (relay [192.0.2.1])\n"
        b"\tby sink.example with LMTP id 1234; Wed, 26 Nov 2025 22:00:00 +0000\n"
        b"x-LOCUST-smtp-TRACE:\n"
        b" run=r.1_x-2;\n"
        b"\tseq=123456789012;\n"
        b"  sent=1764201600\n"
        b"Subject: x\n"
        b"\n"
    )
    assert parse_trace(section) == ("r.1_x-2", 123456789012, 1764201600.0)


def test_parameters_in_any_order_with_spaces_unknown_ones_and_a_trailing_semicolon() -> None:
    section = b"X-Locust-Smtp-Trace:  sent = 1.5 ;SEQ=0; future=1; run =z ;\r\n\r\n"
    assert parse_trace(section) == ("z", 0, 1.5)


def test_the_first_occurrence_wins_even_when_malformed() -> None:
    good = b"X-Locust-Smtp-Trace: run=b; seq=2; sent=2\r\n"
    assert parse_trace(b"X-Locust-Smtp-Trace: run=a; seq=1; sent=1\r\n" + good) == ("a", 1, 1.0)
    assert parse_trace(b"X-Locust-Smtp-Trace: run=a; seq=x; sent=1\r\n" + good) is None
    repeated = b"X-Locust-Smtp-Trace: run=a; seq=1; sent=1; seq=2; run=b\r\n"
    assert parse_trace(repeated) == ("a", 1, 1.0)  # a parameter's first occurrence too


@pytest.mark.parametrize(
    "section",
    [
        b"Subject: no trace here\r\n\r\n",
        b"",
        b"Subject: x\r\n\r\nX-Locust-Smtp-Trace: run=a; seq=1; sent=1\r\n",  # in the body
        b"\r\nX-Locust-Smtp-Trace: run=a; seq=1; sent=1\r\n",  # no header section at all
        b"Subject: x\r\n X-Locust-Smtp-Trace: run=a; seq=1; sent=1\r\n",  # a continuation
        b"X-Locust-Smtp-Tracer: run=a; seq=1; sent=1\r\n",  # another field
    ],
)
def test_no_trace_header(section: bytes) -> None:
    assert parse_trace(section) is None


@pytest.mark.parametrize(
    "value",
    [
        b"run=a; seq=1",  # sent missing
        b"seq=1; sent=1",  # run missing
        b"run=a; sent=1",  # seq missing
        b"run=a; seq=-1; sent=1",
        b"run=a; seq=1.0; sent=1",
        b"run=a; seq=1234567890123456789; sent=1",  # 19 digits
        b"run=a; seq=1; sent=abc",
        b"run=a; seq=1; sent=-1",
        b"run=a; seq=1; sent=1e9",
        b"run=a; seq=1; sent=nan",
        b"run=a; seq=1; sent=1.",
        b"run=; seq=1; sent=1",
        b"run=a b; seq=1; sent=1",
        b"run=a/b; seq=1; sent=1",
        b"run=" + b"a" * 65 + b"; seq=1; sent=1",
        b"run=a; seq=1; sent=1; garbage",
        b"run=a, seq=1, sent=1",
        "run=\u00e9; seq=1; sent=1".encode(),
        b"run=a; seq=\xff1; sent=1",
        b"",
    ],
)
def test_a_malformed_trace_header(value: bytes) -> None:
    assert parse_trace(b"X-Locust-Smtp-Trace: " + value + b"\r\n\r\n") is None


def test_a_64_character_run_id_is_fine() -> None:
    run = "a" * 64
    section = f"X-Locust-Smtp-Trace: run={run}; seq=1; sent=1\r\n".encode()
    assert parse_trace(section) == (run, 1, 1.0)


# -- the tracker ---------------------------------------------------------------------------


def arrive(tracker: DeliveryTracker, run: str, seq: int, latency: float) -> None:
    tracker.arrived(traced(run, seq, SENT), SENT + latency)


def test_duplicates_gaps_and_unique() -> None:
    tracker = DeliveryTracker()
    for seq in (0, 1, 2, 2, 5, 1):
        arrive(tracker, "r", seq, 0.001)
    run = tracker.report()["runs"][0]
    assert (run["received"], run["unique"], run["duplicates"]) == (6, 4, 2)
    assert (run["highest_seq"], run["gaps"]) == (5, 2)  # 3 and 4
    arrive(tracker, "r", 4, 0.001)
    arrive(tracker, "r", 3, 0.001)
    assert tracker.report()["runs"][0]["gaps"] == 0


def test_runs_are_counted_apart() -> None:
    tracker = DeliveryTracker()
    arrive(tracker, "b", 0, 0.001)
    arrive(tracker, "a", 0, 0.001)
    arrive(tracker, "a", 0, 0.001)
    runs = tracker.report()["runs"]
    assert [(r["run"], r["unique"], r["duplicates"]) for r in runs] == [("a", 1, 1), ("b", 1, 0)]


def test_late_is_above_the_threshold_and_counts_first_arrivals_only() -> None:
    tracker = DeliveryTracker(late_after=1.0)
    arrive(tracker, "r", 0, 0.5)
    arrive(tracker, "r", 1, 1.0)  # not above it
    arrive(tracker, "r", 2, 1.5)
    arrive(tracker, "r", 2, 3.0)  # a duplicate: neither late nor in the latencies
    run = tracker.report()["runs"][0]
    assert run["late"] == 1
    assert run["latency_us"]["max"] == 1_500_000


def test_percentiles_of_known_latencies() -> None:
    """1 ms to 1000 ms, shuffled: each percentile within 1/256 of the exact one, max and
    mean exact."""
    tracker = DeliveryTracker()
    latencies = list(range(1, 1001))
    random.Random(1).shuffle(latencies)
    for seq, ms in enumerate(latencies):
        tracker.arrived(traced("p", seq, SENT), SENT + ms / 1000)
    got = tracker.report()["runs"][0]["latency_us"]
    exact = {"p50": 500_000, "p90": 900_000, "p99": 990_000, "p999": 999_000}
    for key, value in exact.items():
        assert got[key] == pytest.approx(value, rel=1 / 256), key
    assert got["max"] == 1_000_000
    assert got["mean"] == pytest.approx(500_500, abs=1)


def test_a_clock_behind_the_generators_records_0() -> None:
    tracker = DeliveryTracker()
    arrive(tracker, "r", 0, -2.0)
    assert tracker.report()["runs"][0]["latency_us"] == {
        "p50": 0,
        "p90": 0,
        "p99": 0,
        "p999": 0,
        "max": 0,
        "mean": 0.0,
    }


def test_the_tracker_matches_the_name_in_any_case() -> None:
    tracker = DeliveryTracker()
    tracker.arrived(b"x-locust-SMTP-trace: run=a; seq=1; sent=1\r\n\r\n", 2.0)
    assert tracker.runs["a"].unique == 1 and tracker.untraced == 0


def test_untraced_messages_are_counted_not_run() -> None:
    tracker = DeliveryTracker()
    tracker.arrived(b"Subject: hi\r\n\r\n", SENT)
    tracker.arrived(b"X-Locust-Smtp-Trace: run=a; seq=x; sent=1\r\n\r\n", SENT)
    tracker.arrived(b"Subject: x-locust-smtp-trace\r\n\r\n", SENT)
    tracker.arrived(b"", SENT)
    assert tracker.untraced == 4 and tracker.runs == {}
    assert tracker.summary() == []  # tracing off: the sink's output is unchanged


def test_expected_counts_give_lost() -> None:
    tracker = DeliveryTracker(expected={"r": 10, "never": 5})
    for seq in (0, 1, 2, 4, 4, 6, 7):
        arrive(tracker, "r", seq, 0.001)
    tracker.expect("other", 1)
    arrive(tracker, "other", 0, 0.001)
    arrive(tracker, "other", 1, 0.001)  # more than expected: none lost
    runs = {r["run"]: r for r in tracker.report()["runs"]}
    assert (runs["r"]["unique"], runs["r"]["expected"], runs["r"]["lost"]) == (6, 10, 4)
    assert runs["other"]["lost"] == 0
    assert runs["never"] == {
        "run": "never",
        "received": 0,
        "unique": 0,
        "duplicates": 0,
        "highest_seq": None,
        "gaps": 0,
        "late": 0,
        "expected": 5,
        "lost": 5,
        "latency_us": None,
        "first_arrival": None,
        "last_arrival": None,
    }


def test_lost_is_unknown_without_an_expected_count() -> None:
    tracker = DeliveryTracker()
    arrive(tracker, "r", 0, 0.001)
    run = tracker.report()["runs"][0]
    assert (run["expected"], run["lost"]) == (None, None)


@pytest.mark.parametrize(("run", "count"), [("a b", 1), ("", 1), ("a" * 65, 1), ("a", -1)])
def test_expect_refuses_what_the_header_could_not_carry(run: str, count: int) -> None:
    with pytest.raises(ValueError):
        DeliveryTracker().expect(run, count)


def test_the_report_document() -> None:
    tracker = DeliveryTracker(late_after=2.5)
    tracker.arrived(traced("r", 0, SENT), SENT + 0.002)
    tracker.arrived(traced("r", 1, SENT), SENT + 0.004)
    tracker.arrived(b"Subject: x\r\n\r\n", SENT + 0.005)
    document = json.loads(json.dumps(tracker.report()))
    run = document["runs"][0]
    assert {k: v for k, v in document.items() if k != "runs"} == {
        "version": 1,
        "header": "X-Locust-Smtp-Trace",
        "late_after_seconds": 2.5,
        "untraced": 1,
    }
    assert run["first_arrival"] == SENT + 0.002 and run["last_arrival"] == SENT + 0.004
    assert run["latency_us"]["max"] == 4000 and run["latency_us"]["mean"] == 3000.0


def test_summary_lines() -> None:
    tracker = DeliveryTracker(expected={"abc": 3})
    arrive(tracker, "abc", 0, 0.001235)  # the middle of its bucket (1232-1239 µs)
    arrive(tracker, "abc", 1, 0.005678)
    arrive(tracker, "abc", 1, 0.001)
    tracker.arrived(b"Subject: hi\r\n\r\n", SENT)
    assert tracker.summary() == [
        "delivery run=abc: 2 unique, 1 duplicates, 0 gaps, "
        "p50 1.235 ms p99 5.678 ms max 5.678 ms, 0 late, 1 lost of 3 expected",
        "delivery: 1 untraced",
    ]


def test_runs_past_the_limit_count_as_untraced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "MAX_RUNS", 2)
    monkeypatch.setattr(delivery, "SUMMARY_RUNS", 1)
    tracker = DeliveryTracker()
    for run in ("a", "b", "c"):
        arrive(tracker, run, 0, 0.001)
    arrive(tracker, "a", 1, 0.001)  # a known run still counts
    assert sorted(tracker.runs) == ["a", "b"] and tracker.untraced == 1
    assert tracker.runs["a"].unique == 2
    assert tracker.summary()[1:] == ["delivery: 1 more runs in the report", "delivery: 1 untraced"]


def test_a_million_sequence_numbers_take_less_than_a_megabyte() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        seen = SeqBitmap()
        for seq in range(1_000_000):
            seen.add(seq)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert used < 1_000_000 and seen.nbytes < 1_000_000
    assert 0 in seen and 999_999 in seen and 1_000_000 not in seen
    assert not seen.add(500_000)  # there already


def test_a_stray_huge_sequence_number_costs_one_page() -> None:
    seen = SeqBitmap()
    assert seen.add(10**17) and seen.add(0)
    assert seen.nbytes == 2 * SeqBitmap.PAGE_BYTES
    assert 10**17 in seen and 10**17 - 1 not in seen and 1 not in seen


def test_the_bitmap_is_a_set() -> None:
    numbers = random.Random(2).sample(range(300_000), 5000)
    seen = SeqBitmap()
    added = [seen.add(n) for n in numbers + numbers[:100]]
    assert added == [True] * 5000 + [False] * 100
    assert all(n in seen for n in numbers)
    assert sum(n in seen for n in range(300_000)) == 5000


def session(**config: Any) -> Session:
    return Session(SinkConfig(**config), Counters())


def feed_pieces(s: Session, data: bytes, size: int) -> bytes:
    return b"".join(s.feed(data[i : i + size]) for i in range(0, len(data), size))


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 100000])
def test_data_in_any_pieces(size: int) -> None:
    s = session()
    s.feed(b"EHLO x\r\n")
    message = traced("d", 3, SENT, body=b"x" * 300 + b"\r\n.line\r\n")
    before = time.time()
    wire = b"MAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\n" + data_payload(message)
    replies = feed_pieces(s, wire[:-3], size)  # all but the "." line
    assert s.head == message[: message.index(b"\r\n\r\n") + 4] and s.head_done
    replies += feed_pieces(s, wire[-3:], size)
    assert replies.endswith(b"250 2.0.0 Ok: queued\r\n")
    stats = s.counters.delivery.runs["d"]
    assert (stats.received, stats.highest) == (1, 3)
    assert stats.first_arrival is not None and before <= stats.first_arrival <= time.time()
    assert s.head == b"" and not s.head_done  # forgotten for the next message


def test_dot_stuffing_comes_off_before_parsing() -> None:
    """It cannot change what parse_trace finds (no field or continuation line starts with
    a dot), but the tracker reads unstuffed DATA content all the same."""
    assert delivery._unstuffed(b"..a\r\nb\r\n..\r\n...c\r\n") == b".a\r\nb\r\n.\r\n..c\r\n"
    tracker = DeliveryTracker()
    stuffed = b"..x: y\r\n" + traced("s", 0, SENT)
    tracker.arrived(stuffed, SENT + 1, dot_stuffed=True)
    assert tracker.runs["s"].unique == 1


@pytest.mark.parametrize("chunk", [1, 10, 37, 1000])
def test_bdat_chunks_split_the_header_anywhere(chunk: int) -> None:
    s = session()
    s.feed(b"EHLO x\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\n")
    message = traced("b", 9, SENT)
    pieces = [message[i : i + chunk] for i in range(0, len(message), chunk)]
    wire = b"".join(b"BDAT %d\r\n" % len(p) + p for p in pieces[:-1])
    wire += b"BDAT %d LAST\r\n" % len(pieces[-1]) + pieces[-1]
    replies = feed_pieces(s, wire, 4)
    assert replies.endswith(b"250 2.0.0 Ok: queued\r\n")
    assert s.counters.delivery.runs["b"].unique == 1 and s.counters.delivery.untraced == 0


def test_only_the_header_section_is_kept() -> None:
    s = session()
    s.feed(b"EHLO x\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\n")
    message = traced("k", 0, SENT, body=b"y" * 100000 + b"\r\n")
    s.feed(message[:50000])  # the header section and part of the body
    assert s.head == message[: message.index(b"\r\n\r\n") + 4] and s.head_done
    assert s.feed(message[50000:] + b".\r\n") == b"250 2.0.0 Ok: queued\r\n"
    assert s.counters.delivery.runs["k"].unique == 1


def test_a_header_section_past_the_limit_is_cut_and_counts_untraced() -> None:
    """The field must come within HEAD_LIMIT bytes of the start: here it comes after
    70 KiB of other fields, and the session keeps no more than HEAD_LIMIT bytes."""
    s = session()
    s.feed(b"EHLO x\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\n")
    filler = b"".join(b"Received: by relay%04d.example\r\n" % i for i in range(2200))
    assert len(filler) > HEAD_LIMIT
    message = filler + traced("far", 0, SENT)
    for at in range(0, len(message), 1000):
        s.feed(message[at : at + 1000])
        assert len(s.head) <= HEAD_LIMIT
    assert s.head.endswith(b"\r\n")  # whole lines
    assert s.feed(b".\r\n") == b"250 2.0.0 Ok: queued\r\n"
    assert s.counters.delivery.runs == {} and s.counters.delivery.untraced == 1


def test_a_message_without_a_header_section() -> None:
    s = session()
    s.feed(b"EHLO x\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\n")
    s.feed(b"\r\nX-Locust-Smtp-Trace: run=a; seq=1; sent=1\r\n")
    assert s.head == b"\r\n" and s.head_done
    s.feed(b".\r\n")
    assert s.counters.delivery.untraced == 1


def test_lmtp_counts_a_transaction_once_whatever_its_recipients() -> None:
    s = session(lmtp=True)
    s.feed(b"LHLO x\r\n")
    for _ in range(2):
        wire = b"MAIL FROM:<a>\r\nRCPT TO:<b>\r\nRCPT TO:<c>\r\nRCPT TO:<d>\r\nDATA\r\n"
        s.feed(wire + data_payload(traced("l", 0, SENT)))
    stats = s.counters.delivery.runs["l"]
    assert (stats.received, stats.unique, stats.duplicates) == (2, 1, 1)


def test_a_refused_message_is_not_tracked_nor_kept() -> None:
    s = session(hard_reject=frozenset({"."}))
    s.feed(b"EHLO x\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\n")
    assert s.feed(data_payload(traced("f", 0, SENT))).startswith(b"550")
    assert s.counters.delivery.runs == {} and s.counters.delivery.untraced == 0
    assert s.head == b""


@pytest.mark.parametrize("reset", [b"RSET\r\n", b""])
def test_a_transaction_left_half_way_leaves_nothing_behind(reset: bytes) -> None:
    """BDAT chunks of a transaction reset half-way (by RSET, or by a new MAIL) are not
    part of the next message."""
    s = session()
    s.feed(b"EHLO x\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\n")
    assert s.feed(b"BDAT 12\r\nX-Locust-Smt").startswith(b"250 ")
    s.feed(reset + b"MAIL FROM:<a>\r\nRCPT TO:<b>\r\n")
    rest = b"p-Trace: run=a; seq=0; sent=1\r\n\r\n"
    s.feed(b"BDAT %d LAST\r\n" % len(rest) + rest)
    assert s.counters.delivery.runs == {} and s.counters.delivery.untraced == 1


# -- the sink as a process -----------------------------------------------------------------


def read_report(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def run_of(document: dict[str, Any], run: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in document["runs"] if r["run"] == run)
    return found


def test_smtp_over_tcp_data_and_bdat(tmp_path: Path) -> None:
    """Four traced messages (one by BDAT), one of them sent twice, one without the
    header, one sent "two minutes ago" in a run of its own: the report at exit."""
    report = tmp_path / "delivery.json"
    start = time.time()
    with our_sink("--delivery-report", str(report), "--expect", "r1=5") as sink:
        client = SmtpClient(sink.address)
        client.connect()
        client.ehlo("vm")
        for seq in (0, 1, 2, 1):
            client.send_mail("a@x", ["b@y"], data_payload(traced("r1", seq, time.time())))
        transaction = client.transaction(
            "a@x", ["b@y"], traced("r1", 3, time.time()), writer=BdatWriter(20)
        )
        assert transaction.delivered
        client.send_mail("a@x", ["b@y"], data_payload(b"Subject: untraced\r\n\r\nhi\r\n"))
        client.send_mail("a@x", ["b@y"], data_payload(traced("old", 0, time.time() - 120)))
        client.quit()
    end = time.time()
    document = read_report(report)
    assert document["untraced"] == 1
    r1 = run_of(document, "r1")
    assert {k: r1[k] for k in ("received", "unique", "duplicates", "gaps", "late")} == {
        "received": 5,
        "unique": 4,
        "duplicates": 1,
        "gaps": 0,
        "late": 0,
    }
    assert (r1["expected"], r1["lost"], r1["highest_seq"]) == (5, 1, 3)
    assert start <= r1["first_arrival"] <= r1["last_arrival"] <= end
    latency = r1["latency_us"]
    assert 0 <= latency["p50"] <= latency["p99"] <= latency["max"] < (end - start) * 1e6
    old = run_of(document, "old")
    assert old["late"] == 1 and old["latency_us"]["max"] >= 120_000_000
    assert sink.counts["messages"] == 7
    lines = sink.output.splitlines()  # the runs in order, untraced, the count line last
    assert lines[-4].startswith("locust-smtp-sink: delivery run=old: 1 unique, ")
    assert re.fullmatch(
        r"locust-smtp-sink: delivery run=r1: 4 unique, 1 duplicates, 0 gaps, "
        r"p50 \d+\.\d{3} ms p99 \d+\.\d{3} ms max \d+\.\d{3} ms, 0 late, 1 lost of 5 expected",
        lines[-3],
    )
    assert lines[-2] == "locust-smtp-sink: delivery: 1 untraced"
    assert not report.with_name("delivery.json.tmp").exists()


def test_lmtp_over_a_unix_socket(tmp_path: Path) -> None:
    """Three recipients per transaction: each message counts once; one sent twice."""
    report = tmp_path / "delivery.json"
    path = str(tmp_path / "lmtp.sock")
    with our_sink("--lmtp", "--delivery-report", str(report), unix_path=path) as sink:
        client = SmtpClient(f"lmtp+unix:{path}")
        client.connect()
        client.lhlo("vm")
        recipients = ["1@y", "2@y", "3@y"]
        for seq in (0, 1, 1, 2):
            payload = data_payload(traced("lm", seq, time.time()))
            assert len(client.send_mail("a@x", recipients, payload).replies) == 3
        client.send_mail("a@x", recipients, data_payload(b"Subject: x\r\n\r\nhi\r\n"))
        client.quit()
    document = read_report(report)
    lm = run_of(document, "lm")
    assert (lm["received"], lm["unique"], lm["duplicates"], lm["gaps"]) == (4, 3, 1, 0)
    assert (lm["expected"], lm["lost"]) == (None, None)
    assert document["untraced"] == 1
    assert sink.counts["messages"] == 5 and sink.counts["recipients"] == 15


def test_the_report_is_rewritten_at_each_report_interval(tmp_path: Path) -> None:
    report = tmp_path / "delivery.json"
    options = ("--delivery-report", str(report), "--report-interval", "0.1")
    with our_sink(*options) as sink:
        assert read_report(report)["runs"] == []  # written at start
        client = SmtpClient(sink.address)
        client.connect()
        client.ehlo("vm")
        client.send_mail("a@x", ["b@y"], data_payload(traced("t", 0, time.time())))
        deadline = time.monotonic() + 10
        while not read_report(report)["runs"]:  # os.replace: never a partial file
            assert time.monotonic() < deadline, "no report with the run within 10 s"
            time.sleep(0.05)
        assert run_of(read_report(report), "t")["unique"] == 1
        client.quit()


def sink_command(*options: str) -> subprocess.CompletedProcess[str]:
    """The sink with ``options`` that make it exit at once (bounded: 30 s)."""
    return subprocess.run(
        [sys.executable, "-m", "locust_smtp.sink", *options, "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_report_that_cannot_be_written_is_fatal_at_start(tmp_path: Path) -> None:
    proc = sink_command("--delivery-report", str(tmp_path / "no" / "such" / "dir.json"))
    assert proc.returncode == 1
    assert proc.stderr.startswith("locust-smtp-sink: fatal: --delivery-report: ")


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (("--expect", "r1"), "not RUN=N: r1"),
        (("--expect", "a b=3"), "not RUN=N: a b=3"),
        (("--expect", "r1=-3"), "bad message count: -3"),
        (("--late", "soon"), "bad late threshold: soon"),
        (("--late", "-1"), "bad late threshold: -1"),
    ],
)
def test_bad_options_name_the_bad_value(options: tuple[str, ...], error: str) -> None:
    proc = sink_command(*options)
    assert proc.returncode == 2 and error in proc.stderr


def test_a_report_that_cannot_be_written_later_is_a_warning(tmp_path: Path) -> None:
    """Its directory gone (renamed: in one step) while the sink runs: each tick warns on
    stderr, and the sink goes on and exits as usual."""
    folder = tmp_path / "reports"
    folder.mkdir()
    report = folder / "delivery.json"
    options = ["--delivery-report", str(report), "--report-interval", "0.05", "127.0.0.1:0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust_smtp.sink", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None and proc.stdout is not None
        assert "listening on" in proc.stderr.readline()
        folder.rename(tmp_path / "gone")
        assert proc.stdout.readline().startswith("locust-smtp-sink: connections 0")  # a tick
        assert proc.stderr.readline().startswith("locust-smtp-sink: warning: --delivery-report: ")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and out.splitlines()[-1].startswith("locust-smtp-sink: connections")
