"""The SMTP tab as a dashboard, in a real browser: a load with rejections (the sink
answers 450 to every 5th RCPT and 550 to every 7th MAIL), the stage table in dialogue
order, the reply-code table against the sink's own counters, charts with data points,
and the same tables and charts in the HTML report. Screenshots are written as test
artifacts (LOCUST_SMTP_SCREENSHOTS=DIR keeps them; docs/img/smtp-tab.png is one)."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from servers import LOCUST_SMTP, free_port, our_sink, wait_listening
from test_webui import CHROMIUM, CHROMIUM_ARGS, SCREENSHOT_ENV, require_browser

from locust_smtp.plugin.codes import ReplyCodes, no_reply_class
from locust_smtp.plugin.recorder import StageRecord
from locust_smtp.protocol import stages
from locust_smtp.protocol._errors import ConnectionLost, SmtpTimeout, TlsError
from locust_smtp.protocol._replies import ReplyReader

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = 300


def test_reply_codes_are_sorted_by_stage_code_and_enhanced_code() -> None:
    records = {name: StageRecord("SMTP", name) for name in (stages.MAIL, stages.RCPT)}
    records[stages.MESSAGE] = StageRecord("SMTP", stages.MESSAGE)
    codes = ReplyCodes(records)
    reader = ReplyReader()
    ok, refused = reader.receive(b"250 2.1.5 Ok\r\n"), reader.receive(b"550 5.1.1 Unknown\r\n")
    assert ok is not None and refused is not None
    # as SmtpUser._on_stage counts them: by the reply object, in the stage's record
    records[stages.RCPT].replies = {id(ok): [ok, 3], id(refused): [refused, 1]}
    records[stages.MAIL].replies = {id(ok): [ok, 1]}
    records[stages.MESSAGE].replies = {id(ok): [ok, 4]}  # not a command's reply
    codes.no_reply(stages.DATA, SmtpTimeout(stages.DATA, "timeout"))
    codes.no_reply(stages.MAIL, ConnectionLost(stages.MAIL, "lost"))
    assert codes.counts == {
        ("RCPT", "250", "2.1.5"): 3,
        ("RCPT", "550", "5.1.1"): 1,
        ("MAIL", "250", "2.1.5"): 1,
        ("DATA", "timeout", ""): 1,
        ("MAIL", "lost connection", ""): 1,
    }
    assert codes.by_class() == {"2xx": 4, "5xx": 1, "timeout": 1, "lost connection": 1}
    assert no_reply_class(TlsError(stages.TLS, "handshake", kind="protocol")) == "TLS failure"
    assert not records[stages.RCPT].replies  # sorted into codes once read
    records[stages.RCPT].replies = {id(ok): [ok, 2]}
    assert codes.counts[("RCPT", "250", "2.1.5")] == 5
    shipped = ReplyCodes.from_list(codes.to_list())
    shipped.add(codes)
    assert shipped.counts[("RCPT", "250", "2.1.5")] == 10


def table(frame: object, table_id: str) -> list[list[str]]:
    rows = frame.locator(f"#{table_id} tbody tr")  # type: ignore[attr-defined]
    return [[c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
            for i in range(rows.count())]  # fmt: skip


def test_the_smtp_tab_is_a_live_dashboard(tmp_path: Path) -> None:
    sync_playwright = require_browser()
    port = free_port()
    shots = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path)
    with our_sink("-r", "rcpt/5", "-f", "mail/7", "--delay", "0.005") as sink:
        web = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "smtp_basic.py"),
             "--web-host", "127.0.0.1", "--web-port", str(port), "--autostart", "-u", "4",
             "-r", "2", "--host", sink.address, "--smtp-messages", str(MESSAGES)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_listening(("127.0.0.1", port), web)
            with sync_playwright() as p:  # type: ignore[operator]
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/")
                page.get_by_role("tab", name="SMTP").click()
                frame = page.frame_locator("#smtp-dashboard-frame")
                # live: the stage table fills while the test runs
                frame.locator("#smtp-stage-table td", has_text="end of data").first.wait_for(
                    timeout=30_000
                )
                page.get_by_text("STOPPED", exact=False).first.wait_for(timeout=90_000)
                page.wait_for_timeout(2500)  # one more refresh of the dashboard after the stop
                page.screenshot(path=str(shots / "smtp-tab.png"), full_page=True)
                stage_rows = table(frame, "smtp-stage-table")
                code_rows = table(frame, "smtp-code-table")
                points = {
                    f"{chart}/{series}": int(count)
                    for chart, series, count in (
                        (
                            el.evaluate("e => e.closest('svg').id"),
                            el.get_attribute("data-name"),
                            el.get_attribute("data-points"),
                        )
                        for el in frame.locator("polyline.series").all()
                    )
                }
                report_url = f"http://127.0.0.1:{port}/stats/report"
                with urllib.request.urlopen(report_url, timeout=30) as r:
                    report_html = r.read().decode()
                report = tmp_path / "report.html"
                report.write_text(report_html)
                page.goto(report.as_uri())
                page.locator("#smtp-code-table").wait_for(timeout=10_000)
                report_codes = table(page, "smtp-code-table")
                report_series = page.locator("#smtp-figures polyline.series").count()
                page.screenshot(path=str(shots / "smtp-report.png"), full_page=True)
                browser.close()
        finally:
            web.terminate()
            web.wait(30)
    # the stage table in dialogue order
    order = [row[1] for row in stage_rows]
    assert order == [s for s in stages.ORDER if s in order]
    assert order[:4] == ["connect", "banner", "HELO", "MAIL"] and order[-1] == "message"
    counts = {(r[1], r[2], r[3]): int(r[4]) for r in code_rows}
    mails = sum(n for (stage, _c, _e), n in counts.items() if stage == "MAIL")
    rcpts = sum(n for (stage, _c, _e), n in counts.items() if stage == "RCPT")
    # against the sink: every 7th MAIL and every 5th RCPT it saw were refused
    assert counts[("MAIL", "550", "5.3.0")] == mails // 7
    assert counts[("RCPT", "450", "4.3.0")] == rcpts // 5
    assert (
        counts[("MAIL", "550", "5.3.0")] + counts[("RCPT", "450", "4.3.0")]
        == (sink.counts["faults"])
    )
    assert counts[("end of data", "250", "2.0.0")] == sink.counts["messages"]
    assert mails == MESSAGES  # every message began with a MAIL (one connection each)
    # the charts have data points
    assert points["smtp-chart-messages/accepted/s"] >= 2
    assert points["smtp-chart-latency/MAIL p99"] >= 2
    assert points["smtp-chart-codes/5xx"] >= 2
    assert any(v > 0 for k, v in points.items() if k.startswith("smtp-chart-codes"))
    # the HTML report: the same code table and the charts
    assert [r[:5] for r in report_codes] == [r[:5] for r in code_rows]  # (not the rate)
    assert report_series >= 8
    assert re.search(r'<svg id="smtp-chart-messages"', report_html)


def test_codes_and_history_across_workers_for_lmtp(tmp_path: Path) -> None:
    """Two worker processes, LMTP with two recipients a message and every 5th RCPT
    refused: PREFIX_smtp.csv holds the summed reply codes (one end-of-data reply per
    accepted recipient) and the history."""
    prefix = tmp_path / "run"
    with our_sink("-L", "-r", "rcpt/5", "--delay", "0.002") as sink:
        proc = subprocess.run(
            [*LOCUST_SMTP, "-L", "-A", "-r", "2", "-s", "4", "-d", "-m", "300", sink.address,
             "--", "--processes", "2", "--csv", str(prefix)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with open(f"{prefix}_smtp.csv", newline="") as f:
        rows = list(csv.reader(f))
    replies = {r[0].removesuffix(" replies"): int(r[1]) for r in rows if r[0].endswith(" replies")}
    rcpts = sum(n for key, n in replies.items() if key.startswith("LMTP RCPT "))
    assert rcpts == 600
    assert replies["LMTP RCPT 450 4.3.0"] == 600 // 5 == sink.counts["faults"]
    assert replies["LMTP end of data 250 2.0.0"] == 600 - 120  # per accepted recipient
    assert replies["LMTP LHLO 250"] == 4
    start = next(i for i, r in enumerate(rows) if r and r[0] == "history: seconds")
    head, history = rows[start], rows[start + 1 :]
    assert head[:7] == ["history: seconds", "users", "accepted/s", "rejected/s", "failed/s",
                        "4xx share", "5xx share"]  # fmt: skip
    assert "LMTP MAIL p50 ms" in head and "LMTP end of data p99 ms" in head
    assert history and all(len(r) == len(head) for r in history)
    assert sum(float(r[2]) for r in history) > 0
