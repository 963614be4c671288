"""The open model: rate profiles, arrival schedules split across workers, and whole runs
at a fixed rate against a sink that answers slowly (with enough sessions, and with too
few, where the latency from the schedule must show the queueing)."""

from __future__ import annotations

import itertools
import json
import math
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from servers import LOCUST_SMTP, free_port, our_sink, wait_listening

from locust_smtp.plugin.arrivals import ArrivalSchedule, parse_profile

ROOT = Path(__file__).resolve().parent.parent


def test_profile_forms() -> None:
    constant = parse_profile("200")
    assert constant.rate(0) == constant.rate(1000) == 200
    assert constant.time_of(200) == pytest.approx(1.0)
    ramp = parse_profile("0-100/10s,100/1m,1000/500ms,50")
    assert ramp.count_at(10) == pytest.approx(500)
    assert ramp.count_at(70.5) == pytest.approx(500 + 6000 + 500)
    assert ramp.rate(5) == pytest.approx(50)
    assert ramp.rate(30) == 100
    assert ramp.rate(70.25) == 1000  # the spike
    assert ramp.rate(71) == 50  # the last rate is held
    # the ramp's integral: 5 t^2 arrivals by t seconds
    assert ramp.time_of(125) == pytest.approx(5.0)
    assert ramp.time_of(500) == pytest.approx(10.0)
    assert ramp.time_of(500 + 6000) == pytest.approx(70.0)
    assert ramp.time_of(6500 + 500 + 50) == pytest.approx(71.5)
    held = parse_profile("10/2s")  # a last segment with a duration is held after it
    assert held.rate(100) == 10


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("fast", "bad rate 'fast'"),
        ("-5", "bad rate '-5'"),
        ("10-20", "needs a /DURATION"),
        ("10,20", "needs a /DURATION"),
        ("10/5x", "bad duration '5x'"),
        ("10/0s,5", "bad duration"),
        ("0", "never sends anything"),
        ("inf", "bad rate"),
    ],
)
def test_bad_profiles_say_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_profile(spec)


def test_constant_arrivals_are_evenly_spaced() -> None:
    schedule = ArrivalSchedule(parse_profile("200"), start=1000.0)
    times = [schedule.take() for _ in range(400)]
    assert times[0] == pytest.approx(1000.005)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap == pytest.approx(0.005) for gap in gaps)


@pytest.mark.parametrize("arrivals", ["constant", "poisson"])
def test_workers_split_one_schedule_exactly(arrivals: str) -> None:
    profile = parse_profile("10-300/20s,300")
    whole = ArrivalSchedule(profile, 0.0, arrivals, seed=7)
    single = [whole.take() for _ in range(3000)]
    parts = [ArrivalSchedule(profile, 0.0, arrivals, seed=7, worker=i, workers=3) for i in range(3)]
    merged = sorted(t for part in parts for t in (part.take() for _ in range(1000)))
    assert merged == pytest.approx(single)


def test_poisson_arrivals_have_exponential_gaps() -> None:
    schedule = ArrivalSchedule(parse_profile("500"), 0.0, "poisson", seed=1)
    times = [schedule.take() for _ in range(20000)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    mean = statistics.fmean(gaps)
    assert mean == pytest.approx(1 / 500, rel=0.02)
    assert statistics.stdev(gaps) / mean == pytest.approx(1.0, rel=0.03)  # CV of 1
    # a Poisson process: the share of gaps shorter than the mean is 1 - 1/e
    short = sum(gap < mean for gap in gaps) / len(gaps)
    assert short == pytest.approx(1 - math.exp(-1), abs=0.015)


def test_a_rate_change_reschedules_what_is_not_taken() -> None:
    schedule = ArrivalSchedule(parse_profile("10"), 0.0)
    assert [schedule.take() for _ in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    schedule.change(parse_profile("100"), at=0.35)  # 3.5 arrivals due by then
    assert [schedule.take() for _ in range(2)] == pytest.approx([0.355, 0.365])
    # workers told of the same change at the same time still share one schedule
    whole = ArrivalSchedule(parse_profile("10"), 0.0)
    parts = [ArrivalSchedule(parse_profile("10"), 0.0, worker=i, workers=2) for i in (0, 1)]
    for schedule in (whole, *parts):
        schedule.change(parse_profile("0-100/10s,100"), at=1.0)
    merged = sorted(t for part in parts for t in (part.take() for _ in range(300)))
    assert merged == pytest.approx([whole.take() for _ in range(600)])


ROW = re.compile(r"^(start lag|message from schedule|message)\s+(\d+)\s+(\d+)\s+([\d.\s]+)$")


def summary_rows(stderr: str) -> dict[str, list[float]]:
    """Stage -> [count, failed, avg, p50, p90, p99, p99.9, max] from the summary."""
    rows = {}
    for line in stderr.splitlines():
        found = ROW.match(line.strip())
        if found:
            values = [float(v) for v in found.group(4).split()]
            rows[found.group(1)] = [float(found.group(2)), float(found.group(3)), *values]
    return rows


def run_at_rate(tmp_path: Path, sessions: int, messages: int, *extra: str) -> tuple[
    list[dict[str, object]], dict[str, list[float]]
]:  # fmt: skip
    log = tmp_path / "log.jsonl"
    with our_sink("--delay", "0.05") as sink:
        proc = subprocess.run(
            [*LOCUST_SMTP, "-d", "-s", str(sessions), "-m", str(messages), "--rate", "200",
             "--transaction-log", str(log), sink.address, *extra],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sink.counts["messages"] == messages
    records = [json.loads(line) for f in sorted(tmp_path.glob("log.jsonl*"))
               for line in f.read_text().splitlines()]  # fmt: skip
    assert len(records) == messages
    return records, summary_rows(proc.stderr)


def test_enough_sessions_keep_the_rate(tmp_path: Path) -> None:
    """200 messages/s for 10 s against replies delayed 50 ms (a message takes 200 ms:
    40 sessions' worth of work at once); 60 sessions keep up."""
    records, rows = run_at_rate(tmp_path, 60, 2000)
    starts = sorted(float(r["time"]) for r in records)  # type: ignore[arg-type]
    achieved = (len(starts) - 1) / (starts[-1] - starts[0])
    assert achieved == pytest.approx(200, rel=0.02)
    scheduled = sorted(float(r["scheduled"]) for r in records)  # type: ignore[arg-type]
    assert scheduled[-1] - scheduled[0] == pytest.approx(1999 / 200, rel=1e-6)
    # late only while the sessions connect (connect, greeting, HELO: 100 ms and more);
    # a start more than 20 ms after its time is beyond the timers' precision
    lag = rows.get("start lag", [0.0] * 8)
    assert lag[0] < 0.05 * 2000 and lag[7] < 250  # few, and none queued for long
    late = [r for r in records if float(r["time"]) - float(r["scheduled"]) > 0.02]  # type: ignore[arg-type]
    assert all(float(r["scheduled"]) - scheduled[0] < 0.5 for r in late)  # type: ignore[arg-type]
    # on time: timed from the schedule, a message takes what it takes from its start,
    # plus the generator's timer precision
    assert rows["message from schedule"][3] < rows["message"][3] + 5


def test_too_few_sessions_show_the_queue(tmp_path: Path) -> None:
    """20 sessions serve 100 messages/s: at 200/s the schedule runs ahead of them and
    the latency from the schedule grows with the queue; the latency from the start
    does not, and that is what a closed-model tool would have reported."""
    records, rows = run_at_rate(tmp_path, 20, 1000)
    late = rows["start lag"][0]
    assert late > 0.8 * 1000
    message_p99 = rows["message"][5]
    schedule_p50, schedule_max = rows["message from schedule"][3], rows["message from schedule"][7]
    assert message_p99 < 500
    # 1000 messages due over 5 s, served over 10 s: the last waits about 5 s
    assert schedule_max > 4000
    assert schedule_p50 > 1000
    for record in records:
        queued = float(record["time"]) - float(record["scheduled"])  # type: ignore[arg-type]
        assert queued > -0.001  # never started before its time


def test_workers_share_the_rate_exactly(tmp_path: Path) -> None:
    records, _rows = run_at_rate(tmp_path, 60, 600, "--", "--processes", "2")
    workers = {str(r["user"]).split(":")[0] for r in records}
    assert workers == {"0", "1"}
    # one schedule of 200/s: each worker takes every other arrival (10 ms apart), the two
    # offset by 5 ms (where the pool ran out, one worker may have sent a few more)
    firsts = []
    for worker in ("0", "1"):
        mine = sorted(float(r["scheduled"]) for r in records if r["user"].startswith(worker))  # type: ignore[union-attr, arg-type]
        # (each time is logged rounded to 1 µs: a difference of two is within 2 µs)
        assert all(b - a == pytest.approx(0.010, abs=2e-6) for a, b in itertools.pairwise(mine))
        assert 250 <= len(mine) <= 350
        firsts.append(mine[0])
    assert abs(firsts[1] - firsts[0]) == pytest.approx(0.005, abs=2e-6)
    starts = sorted(float(r["time"]) for r in records)  # type: ignore[arg-type]
    assert (len(starts) - 1) / (starts[-1] - starts[0]) == pytest.approx(200, rel=0.03)


def message_count(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats/requests", timeout=10) as r:
        data = json.load(r)
    counts = [s["num_requests"] for s in data["stats"] if s["name"] == "message"]
    return int(counts[0]) if counts else 0


def test_the_rate_is_changed_from_the_web_ui_on_every_worker(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "log.jsonl"
    with our_sink() as sink:
        web = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "smtp_basic.py"),
             "--web-host", "127.0.0.1", "--web-port", str(port), "--autostart", "-u", "20",
             "-r", "20", "--host", sink.address, "--smtp-rate", "20", "--processes", "2",
             "--smtp-transaction-log", str(log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_listening(("127.0.0.1", port), web)
            deadline = time.monotonic() + 30
            while message_count(port) < 20:  # the workers report messages sent
                assert time.monotonic() < deadline, "no messages counted"
                time.sleep(0.2)
            # the SMTP tab's dashboard offers the rate to change, as it runs
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/smtp/dashboard/") as r:
                dashboard = r.read().decode()
            changed = time.time()
            said = post_rate(port, "100")
            bad = post_rate(port, "lots")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/smtp/rate", timeout=10) as r:
                form = r.read().decode()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats/requests") as r:
                tab = {
                    row["metric"]: row["value"]
                    for table in json.load(r)["extended_stats"]
                    if table["key"] == "smtp"
                    for row in table["data"]
                }
            # let 3 s of the new rate go by (it applies 1 s after the change)
            while message_count(port) < 20 + 300:
                assert time.monotonic() < deadline + 30, "the new rate never came"
                time.sleep(0.2)
        finally:
            web.terminate()
            web.wait(30)
    assert 'id="smtp-rate-form"' in dashboard and 'value="20"' in dashboard
    assert said == {"success": True, "message": "rate changed to 100", "rate": "100"}
    assert bad["success"] is False and "bad rate 'lots'" in bad["message"]
    assert 'value="100"' in form
    assert tab["arrival rate profile"] == "100"
    records = [json.loads(line) for f in tmp_path.glob("log.jsonl.worker-*")
               for line in f.read_text().splitlines()]  # fmt: skip
    assert {r["user"].split(":")[0] for r in records} == {"0", "1"}
    starts = sorted(r["time"] for r in records)

    def rate(begin: float, end: float) -> float:
        return sum(begin <= t < end for t in starts) / (end - begin)

    assert rate(starts[0] + 0.5, changed) == pytest.approx(20, rel=0.2)
    assert rate(changed + 1.2, changed + 3.2) == pytest.approx(100, rel=0.1)


def post_rate(port: int, rate: str) -> dict[str, object]:
    body = urllib.parse.urlencode({"rate": rate}).encode()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/smtp/rate", body, timeout=10) as r:
        return json.load(r)  # type: ignore[no-any-return]
