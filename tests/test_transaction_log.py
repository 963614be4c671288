"""The per-transaction log (JSON Lines): its schema, end to end through the command, a
locustfile's users and Locust's worker processes, against the project's sink."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from servers import LOCUST_SMTP, our_sink, run_users

from locust_smtp import SmtpUser
from locust_smtp.plugin.transaction_log import queue_id

KEYS = {"v", "time", "user", "connection", "type", "outcome", "us", "stages", "queue_id",
        "bytes", "recipients"}  # fmt: skip


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_queue_ids_of_postfix_and_dovecot_replies() -> None:
    assert queue_id("2.0.0 Ok: queued as 4dHx2K0qLfz9vDq") == "4dHx2K0qLfz9vDq"
    assert queue_id("2.0.0 <bob@example.org> 8Bq2MvZHJmnXAQAAm6b2BA Saved") == (
        "8Bq2MvZHJmnXAQAAm6b2BA"
    )
    assert queue_id("2.0.0 Ok: queued") is None
    assert queue_id("2.0.0 Ok") is None


def test_command_writes_one_line_per_message_with_every_stage(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    with our_sink() as sink:
        proc = subprocess.run(
            [*LOCUST_SMTP, "-s", "2", "-m", "6", "-r", "2", "--transaction-log", str(log),
             sink.address],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = read_log(log)
    assert len(records) == 6
    for record in records:
        assert set(record) == KEYS
        assert record["v"] == 1 and record["type"] == "SMTP"
        assert record["outcome"] == "accepted"
        names = [stage["stage"] for stage in record["stages"]]
        # a connection per message (no -d): its set-up is part of the message; QUIT is not
        assert names == ["connect", "banner", "HELO", "MAIL", "RCPT", "RCPT", "DATA",
                         "end of data"]  # fmt: skip
        codes = [stage["code"] for stage in record["stages"]]
        assert codes == [None, 220, 250, 250, 250, 250, 354, 250]
        assert record["stages"][3]["enhanced"] == "2.1.0"
        assert record["recipients"] == {"accepted": 2, "refused": 0}
        assert record["bytes"] == sum(stage["bytes"] for stage in record["stages"]) > 100
        assert record["us"] >= sum(stage["us"] for stage in record["stages"][3:])
    users = {record["user"] for record in records}
    assert users == {"0:1", "0:2"} or len(users) == 2
    # each user's connections are numbered 1, 2, 3 ... in its own lines
    for user in users:
        numbers = [r["connection"] for r in records if r["user"] == user]
        assert numbers == list(range(1, len(numbers) + 1))
    times = [record["time"] for record in records]
    assert max(times) - min(times) < 30


def test_rejections_and_reused_connections_are_logged(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    with our_sink("-f", "RCPT", "--fault-every", "2") as sink:
        proc = subprocess.run(
            [*LOCUST_SMTP, "-A", "-d", "-s", "1", "-m", "4", "--transaction-log", str(log),
             sink.address],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = read_log(log)
    assert [r["outcome"] for r in records] == ["accepted", "rejected", "accepted", "rejected"]
    assert [r["connection"] for r in records] == [1, 1, 1, 1]  # -d: one connection
    assert records[0]["stages"][0]["stage"] == "connect"
    assert records[2]["stages"][0]["stage"] == "MAIL"  # the connection was already open
    refused = records[1]
    rcpt = next(s for s in refused["stages"] if s["stage"] == "RCPT")
    assert rcpt["code"] == 550 and "error" in rcpt
    assert refused["recipients"] == {"accepted": 0, "refused": 1}
    assert refused["error"].startswith("recipient rejected: 550")
    # RSET after the refused transaction belongs to no message
    assert all(s["stage"] != "RSET" for r in records for s in r["stages"])


def test_locust_workers_each_write_their_own_file(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    with our_sink() as sink:
        proc = subprocess.run(
            [*LOCUST_SMTP, "-d", "-s", "4", "-m", "200", "--transaction-log", str(log),
             sink.address, "--", "--processes", "2"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    files = sorted(tmp_path.glob("log.jsonl.worker-*"))
    assert [f.name for f in files] == ["log.jsonl.worker-0", "log.jsonl.worker-1"]
    records = [r for f in files for r in read_log(f)]
    assert len(records) == 200  # every message once, across the two workers
    assert not log.exists() or not log.read_text()  # the master sends nothing


def test_a_locustfile_user_logs_through_its_attribute(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    with our_sink("-L") as sink:

        class Logged(SmtpUser):
            host = f"lmtp://{sink.address}"
            reuse_connection = True
            recipients_per_message = 3
            transaction_log = str(log)

        environment = run_users(Logged, 2, 10)
    assert sink.counts["messages"] == 10
    records = read_log(log)
    assert len(records) == 10
    assert {r["type"] for r in records} == {"LMTP"}
    for record in records:
        end = [s for s in record["stages"] if s["stage"] == "end of data"]
        assert len(end) == 3  # one reply per recipient
        assert record["recipients"] == {"accepted": 3, "refused": 0}
    assert environment.stats.entries[("message", "LMTP")].num_requests == 10
