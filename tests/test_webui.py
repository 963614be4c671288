"""A real browser on Locust's web UI: start a mail run from the form, watch the SMTP rows
and the SMTP tab, and check them against the sink's own count.

Headless Debian Chromium driven by Playwright (no browser download: the test uses
/usr/bin/chromium). Skipped where either is missing, failing in CI, which installs both.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from servers import IN_CI, free_port, our_sink, wait_listening

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
# LOCUST_SMTP_SCREENSHOTS=docs refreshes the docs' screenshots: webui-stats.png (the
# Statistics tab while mail flows) and webui-smtp.png (the SMTP tab at the end)
SCREENSHOT_ENV = "LOCUST_SMTP_SCREENSHOTS"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MESSAGES = 60


def check_box(page: object, selector: str, attempts: int = 3) -> None:
    """Tick a checkbox of the start form. The form grows as its "Custom parameters"
    section opens, and a click while it moves can leave the box as it was (Playwright:
    "Clicking the checkbox did not change its state"): try again, a few times."""
    from playwright.sync_api import Error

    for attempt in range(attempts):
        try:
            page.check(selector, timeout=5_000)  # type: ignore[attr-defined]
            return
        except Error:
            if attempt == attempts - 1:
                raise


def require_browser() -> object:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append("Debian chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("playwright (pip)")
    if missing:
        if IN_CI:
            pytest.fail(f"{' and '.join(missing)} missing; .ci/run must install them")
        pytest.skip(f"{' and '.join(missing)} not installed")
    return sync_playwright


def test_start_a_run_in_the_browser_and_see_the_sinks_counts(tmp_path: Path) -> None:
    sync_playwright = require_browser()
    port = free_port()
    # each sink reply waits 20 ms, so that the run is still going while we look
    with our_sink("--delay", "0.02") as sink:
        web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(ROOT / "locustfiles" / "smtp_basic.py"),
                "--web-host",
                "127.0.0.1",
                "--web-port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_listening(("127.0.0.1", port), web)
            with sync_playwright() as p:  # type: ignore[operator]
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(f"http://127.0.0.1:{port}/")
                page.fill("input[name=userCount]", "2")
                page.fill("input[name=spawnRate]", "2")
                page.fill("input[name=host]", sink.address)
                page.get_by_text("Custom parameters").click()
                page.fill("input[name=smtpMessages]", str(MESSAGES))
                page.get_by_role("button", name="Start").click()

                # mail flows: the per-stage SMTP rows appear while the test runs
                page.get_by_role("cell", name="end of data").wait_for(timeout=30_000)
                for stage in ("connect", "banner", "HELO", "MAIL", "RCPT", "DATA", "message"):
                    assert page.get_by_role("cell", name=stage, exact=True).count() >= 1
                assert page.get_by_text("RUNNING", exact=False).count() >= 1
                shots = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path)
                page.screenshot(path=str(shots / "webui-stats.png"))

                # the pool runs out: the test stops by itself and the UI keeps the numbers
                page.get_by_text("STOPPED", exact=False).first.wait_for(timeout=60_000)
                row = page.get_by_role("row").filter(
                    has=page.get_by_role("cell", name="message", exact=True)
                )
                message_row = row.first.inner_text()
                page.get_by_role("tab", name="SMTP").click()
                page.get_by_text("SMTP messages accepted").wait_for(timeout=10_000)
                tab = page.get_by_role("table").inner_text()
                page.screenshot(path=str(shots / "webui-smtp.png"))
                # per-stage percentiles from the microsecond histograms
                page.get_by_role("tab", name="Stage latency").click()
                page.get_by_role("cell", name="end of data").wait_for(timeout=10_000)
                stage_tab = page.get_by_role("table").inner_text()
                page.screenshot(path=str(shots / "webui-stages.png"))
                # the downloadable report carries the SMTP figures too
                report = page.request.get(f"http://127.0.0.1:{port}/stats/report").text()
                browser.close()
        finally:
            web.terminate()
            web.wait(30)
    assert sink.counts["messages"] == MESSAGES
    assert re.search(rf"\bmessage\s+{MESSAGES}\s+0\b", message_row), message_row
    assert re.search(rf"SMTP messages accepted\s+{MESSAGES}\b", tab), tab
    assert re.search(r"SMTP messages failed\s+0\b", tab), tab
    assert f"<td>SMTP messages accepted</td><td>{MESSAGES}</td>" in report
    for stage in ("MAIL", "RCPT", "DATA", "end of data"):
        # type, stage, count, failed, avg, p50, p90, p99, p99.9, max: ms with sub-ms digits
        row = re.search(rf"SMTP\s+{stage}\s+{MESSAGES}\s+0((\s+\d+\.\d+){{6}})", stage_tab)
        assert row is not None, stage_tab
        times = [float(x) for x in row.group(1).split()]
        assert times[1:] == sorted(times[1:]), times  # p50 <= p90 <= p99 <= p99.9 <= max
        assert f"<td>SMTP</td><td>{stage}</td><td>{MESSAGES}</td><td>0</td>" in report


def test_starttls_and_auth_from_the_form_keep_the_password_out_of_the_page(
    tmp_path: Path,
) -> None:
    """The form's TLS and AUTH fields start a STARTTLS + AUTH LOGIN run (EHLO: the form's
    untouched hello select leaves the choice to the user); the password, read from the
    credentials file, never reaches the page."""
    sync_playwright = require_browser()
    port = free_port()
    password = "correct-horse-battery"
    sink_accounts = tmp_path / "sink-accounts"
    sink_accounts.write_text(f"alice:{password}\n")
    table = tmp_path / "accounts.csv"
    table.write_text(f"alice,{password}\n")
    with our_sink("--starttls", "--auth-file", str(sink_accounts), "--delay", "0.01") as sink:
        web = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "smtp_basic.py"),
             "--web-host", "127.0.0.1", "--web-port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_listening(("127.0.0.1", port), web)
            with sync_playwright() as p:  # type: ignore[operator]
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(f"http://127.0.0.1:{port}/")
                page.fill("input[name=userCount]", "2")
                page.fill("input[name=spawnRate]", "2")
                page.fill("input[name=host]", sink.address)
                page.get_by_text("Custom parameters").click()
                # selects start at "default": the user class's own setting
                for select in ("smtpHelloCommand", "smtpStarttls", "smtpAuthMechanism"):
                    assert page.input_value(f"select[name={select}]") == "default"
                page.fill("input[name=smtpMessages]", "20")
                page.select_option("select[name=smtpStarttls]", "required")
                check_box(page, "input[name=smtpTlsNoVerify]")
                page.select_option("select[name=smtpTlsMinVersion]", "TLSv1.2")
                page.select_option("select[name=smtpAuthMechanism]", "LOGIN")
                page.fill("input[name=smtpAuthCredentialsFile]", str(table))
                page.get_by_role("button", name="Start").click()
                page.get_by_text("STOPPED", exact=False).first.wait_for(timeout=60_000)
                row = page.get_by_role("row").filter(
                    has=page.get_by_role("cell", name="AUTH", exact=True)
                )
                auth_row = row.first.inner_text()
                pages = [page.content()]
                for path in ("/", "/stats/requests", "/stats/report"):
                    pages.append(page.request.get(f"http://127.0.0.1:{port}{path}").text())
                browser.close()
        finally:
            web.terminate()
            web.wait(30)
    assert (sink.counts["messages"], sink.counts["auth"], sink.counts["auth_failed"]) == (20, 20, 0)
    assert sink.counts["tls"] == 20
    assert re.search(r"\bAUTH\s+20\s+0\b", auth_row), auth_row
    assert not [text for text in pages if password in text]
