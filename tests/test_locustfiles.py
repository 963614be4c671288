"""The example locustfiles a mail operator copies, each run for real against the
project's sink (bounded by --smtp-messages), as their docstrings say to run them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from servers import our_sink

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "locustfiles"


def locust(locustfile: str, host: str, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(EXAMPLES / locustfile), "--headless",
         "--host", host, "--only-summary", *args],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


def test_corpus_replay_sends_the_bundled_corpus(tmp_path: Path) -> None:
    with our_sink(record=tmp_path) as sink:
        locust("corpus_replay.py", sink.address, "-u", "3", "--smtp-messages", "30")
    assert sink.counts["messages"] == 30
    sent = b"".join(f.read_bytes() for f in tmp_path.glob("*.client"))
    for subject in (b"Welcome to the service", b"Weekly report", b"Nouvelles_de_la_semaine"):
        assert subject in sent
    assert b"\r\n..\r\nA line with a lone dot" in sent  # dot-stuffed on the wire


def test_submission_mix_authenticates_and_draws_sizes(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("alice:wonderland\nbob:builder\n")
    csv = tmp_path / "accounts.csv"
    csv.write_text("alice,wonderland\nbob,builder\n")
    with our_sink("--starttls", "--auth-file", str(accounts)) as sink:
        out = locust("submission_mix.py", sink.address, "-u", "2", "--smtp-messages", "12",
                     "--smtp-auth-credentials-file", str(csv))  # fmt: skip
    assert sink.counts["messages"] == 12
    assert "AUTH" in out and "STARTTLS" in out


def test_mx_inbound_runs_at_its_rate_from_many_addresses() -> None:
    with our_sink() as sink:
        out = locust("mx_inbound.py", sink.address, "-u", "20", "--smtp-messages", "100")
    assert sink.counts["messages"] == 100
    assert "message from schedule" in out
    assert sink.counts["clients"] >= 10  # an address per connection (XCLIENT)


def test_end_to_end_relay_traces_every_message(tmp_path: Path) -> None:
    report = tmp_path / "delivery.json"
    with our_sink("--delivery-report", str(report), "--expect", "e2e-example=40") as sink:
        locust("end_to_end_relay.py", sink.address, "-u", "4", "--smtp-messages", "40",
               "--smtp-run-id", "e2e-example")  # fmt: skip
    (run,) = json.loads(report.read_text())["runs"]
    assert run["run"] == "e2e-example" and run["unique"] == 40 and run["lost"] == 0
    assert sink.counts["messages"] == 40
