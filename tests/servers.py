"""Test servers on loopback: Postfix's smtp-sink, a scripted gevent server, aiosmtpd.

Every server binds 127.0.0.1 (or ::1, or a UNIX socket in a temporary
directory) on a port of its own and publishes what it got; nothing depends on
a fixed port. Start-up waits by polling for the listening socket, bounded in
time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gevent.server import StreamServer

SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"
IN_CI = os.environ.get("CI") == "true"


def require_binary(path: str) -> str:
    """Skip a test when a Debian binary is missing, but fail in CI, which installs it."""
    if shutil.which(path) is None:
        message = f"{path} not installed (Debian package postfix)"
        if IN_CI:
            pytest.fail(message + "; .ci/run must install it")
        pytest.skip(message)
    return path


def free_port(family: int = socket.AF_INET) -> int:
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def wait_listening(
    target: tuple[str, int] | str,
    proc: subprocess.Popen[bytes] | None = None,
    timeout: float = 10.0,
) -> None:
    """Poll until something accepts connections at ``target`` (bounded)."""
    deadline = time.monotonic() + timeout
    family = (
        socket.AF_UNIX
        if isinstance(target, str)
        else (socket.AF_INET6 if ":" in target[0] else socket.AF_INET)
    )
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with status {proc.returncode}")
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.connect(target)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
        time.sleep(0.02)


@contextlib.contextmanager
def smtp_sink(*options: str, unix_path: str | None = None, ipv6: bool = False) -> Iterator[str]:
    """Run Postfix's smtp-sink with ``options``; yields the address to give the client."""
    require_binary(SMTP_SINK)
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    if unix_path is not None:
        listen, address, target = f"unix:{unix_path}", f"unix:{unix_path}", unix_path
    elif ipv6:
        port = free_port(socket.AF_INET6)
        listen, address, target = f"[::1]:{port}", f"[::1]:{port}", ("::1", port)
    else:
        port = free_port()
        listen, address = f"127.0.0.1:{port}", f"127.0.0.1:{port}"
        target = ("127.0.0.1", port)
    proc = subprocess.Popen(
        [SMTP_SINK, *user, *options, listen, "100"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if unix_path is not None:
            deadline = time.monotonic() + 10
            while not Path(unix_path).exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("smtp-sink did not create its socket")
                time.sleep(0.02)
            os.chmod(unix_path, 0o666)
        wait_listening(target, proc)
        yield address
    finally:
        proc.terminate()
        proc.wait(10)


Handler = Callable[[socket.socket], None]


@contextlib.contextmanager
def scripted_server(handler: Handler) -> Iterator[str]:
    """A gevent server running ``handler(sock)`` for each connection; yields host:port."""

    def handle(sock: socket.socket, _address: object) -> None:
        with contextlib.suppress(OSError):
            handler(sock)

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.stop(timeout=1)


def read_line(sock: socket.socket, buffer: bytearray) -> bytes:
    """Read one CRLF line (server side of a scripted dialogue); b"" on EOF."""
    while b"\n" not in buffer:
        data = sock.recv(4096)
        if not data:
            return b""
        buffer += data
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line + b"\n"


@contextlib.contextmanager
def aiosmtpd_server(
    lmtp: bool = False, tls: str | None = None, cert: tuple[str, str] | None = None
) -> Iterator[tuple[str, Path]]:
    """aiosmtpd in a child process (the test process is gevent-patched, aiosmtpd is asyncio);
    it appends every message it receives to a log. Yields (host:port, log path).
    ``tls``: ``"starttls"`` (required before MAIL) or ``"smtps"``, with ``cert`` = (chain
    file, key file)."""
    pytest.importorskip("aiosmtpd")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "messages.log"
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("aiosmtpd_server.py")),
                str(port),
                str(log),
                tls or ("lmtp" if lmtp else "smtp"),
                *(cert or ()),
            ],
        )
        try:
            wait_listening(("127.0.0.1", port), proc)
            yield f"127.0.0.1:{port}", log
        finally:
            proc.terminate()
            proc.wait(10)


LOCUST_SMTP = [sys.executable, "-m", "locust_smtp"]


class SinkHandle:
    """A running locust-smtp-sink: its address, and its counts once it has stopped."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.counts: dict[str, int] = {}
        self.output = ""
        """What it printed on stdout."""


@contextlib.contextmanager
def our_sink(
    *options: str, record: Path | None = None, unix_path: str | None = None, ipv6: bool = False
) -> Iterator[SinkHandle]:
    """Run the project's own sink (``locust-smtp-sink``) in a child process."""
    if unix_path is not None:
        listen = f"unix:{unix_path}"
    elif ipv6:
        listen = f"[::1]:{free_port(socket.AF_INET6)}"
    else:
        listen = f"127.0.0.1:{free_port()}"
    extra = ["--record", str(record)] if record is not None else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust_smtp.sink", *options, *extra, listen],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    handle = SinkHandle(listen)
    try:
        # the sink says when it listens; probing with a connection would be counted
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        if "listening on" not in line:
            raise RuntimeError(f"locust-smtp-sink did not start: {line!r}")
        yield handle
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        handle.output = out.decode()
        last = handle.output.strip().splitlines()[-1].removeprefix("locust-smtp-sink:").split()
        handle.counts = {last[i]: int(last[i + 1]) for i in range(0, len(last), 2)}


def run_users(user_class: type, users: int, messages: int) -> Any:
    """A local Locust run of ``users`` users of ``user_class`` sending exactly
    ``messages`` messages; returns its Environment once the users are done (bounded:
    30 s), with every stage sample in its statistics."""
    from locust.env import Environment

    from locust_smtp.plugin.options import install_pool
    from locust_smtp.plugin.recorder import recorder_of

    environment = Environment(user_classes=[user_class])
    runner = environment.create_local_runner()
    install_pool(environment, messages)
    runner.start(users, spawn_rate=users)
    runner.spawning_greenlet.join(30)
    runner.user_greenlets.join(timeout=30)
    runner.quit()
    recorder_of(environment).flush()
    return environment


def stage_rows(environment: Any) -> dict[str, tuple[int, int]]:
    """Stage name -> (requests, failures) of a run's statistics."""
    entries = environment.stats.entries.items()
    return {name: (e.num_requests, e.num_failures) for (name, _kind), e in entries}
