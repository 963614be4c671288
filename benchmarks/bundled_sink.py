"""Helpers the benchmark scripts share: the bundled sink in a child process, and a
process's resident memory."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

SINK_COUNTS = re.compile(r"connections (\d+) messages (\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sink(port: int, *options: str) -> subprocess.Popen[str]:
    """``locust-smtp-sink [options] 127.0.0.1:PORT``, once it listens."""
    cmd = [sys.executable, "-m", "locust_smtp.sink", *options, f"127.0.0.1:{port}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.stderr is None:
        raise RuntimeError("no pipe")
    # wait for "listening on": a test connection would count as one more connection
    line = proc.stderr.readline()
    if "listening on" not in line:
        raise RuntimeError(f"sink did not start: {line}{proc.stderr.read()}")
    return proc


def stop_sink(proc: subprocess.Popen[str]) -> tuple[int, int, str]:
    """SIGTERM the sink; return (connections, messages) from its last count line (-1, -1
    without one), and what it wrote on stderr."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    matches = SINK_COUNTS.findall(out)
    if not matches:
        return -1, -1, err
    connections, messages = matches[-1]
    return int(connections), int(messages), err


def vm_rss_kb(pid: int) -> int | None:
    """The process's resident memory (VmRSS) in KB, None once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
