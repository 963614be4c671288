"""The generator's side of end-to-end tracing: the X-Locust-Smtp-Trace header, numbered
once across the run's exact count, also across Locust workers."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from servers import LOCUST_SMTP, our_sink, run_users

from locust_smtp import SmtpUser
from locust_smtp.plugin.trace import check_run_id, new_run_id, trace_header

TRACE = re.compile(rb"X-Locust-Smtp-Trace: run=([\w.-]+); seq=(\d+); sent=(\d+\.\d{6})\r?\n")


def traces(record: Path) -> list[tuple[str, int, float]]:
    found = [m for f in sorted(record.glob("*.client")) for m in TRACE.finditer(f.read_bytes())]
    return [(m.group(1).decode(), int(m.group(2)), float(m.group(3))) for m in found]


def test_header_and_run_ids() -> None:
    assert trace_header("r1", 7, 1764201600.5) == (
        b"X-Locust-Smtp-Trace: run=r1; seq=7; sent=1764201600.500000\r\n"
    )
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{4}", new_run_id())
    with pytest.raises(ValueError, match="bad run id"):
        check_run_id("has space")
    with pytest.raises(ValueError, match="bad run id"):
        check_run_id("x" * 65)


def test_the_command_numbers_every_message_once_across_workers(tmp_path: Path) -> None:
    started = time.time()
    with our_sink(record=tmp_path) as sink:
        proc = subprocess.run(
            [*LOCUST_SMTP, "-d", "-s", "4", "-m", "60", "--trace-delivery", "--run-id",
             "run-7", sink.address, "--", "--processes", "2"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "delivery traced as run run-7" in proc.stderr
    found = traces(tmp_path)
    assert sorted(seq for _run, seq, _sent in found) == list(range(60))
    assert {run for run, _seq, _sent in found} == {"run-7"}
    assert all(started <= sent <= time.time() for _run, _seq, sent in found)


def test_a_user_traces_first_in_the_message_with_a_default_run_id(tmp_path: Path) -> None:
    with our_sink(record=tmp_path) as sink:

        class Traced(SmtpUser):
            host = sink.address
            trace_delivery = True
            reuse_connection = True
            chunking = "on"  # BDAT: the header is in the chunk, counted in its size

        run_users(Traced, 2, 10)
    found = traces(tmp_path)
    assert sorted(seq for _run, seq, _sent in found) == list(range(10))
    assert len({run for run, _seq, _sent in found}) == 1
    for f in tmp_path.glob("*.client"):
        for chunk in re.finditer(rb"BDAT (\d+) LAST\r\n", f.read_bytes()):
            assert f.read_bytes()[chunk.end() :].startswith(b"X-Locust-Smtp-Trace: ")
