"""The sink's hardening: TCP_NODELAY on its connections, credentials kept out of its
recordings, no STARTTLS inside implicit TLS, and OAUTHBEARER's escaped authzid."""

from __future__ import annotations

import base64
import re
import socket
import ssl
import statistics
import time
from pathlib import Path

import pytest
from servers import our_sink

from locust_smtp import SmtpClient, data_payload
from locust_smtp.protocol._auth import mechanism
from locust_smtp.sink.server import Recorder
from locust_smtp.sink.state import Counters, Session, SinkConfig

PAYLOAD = data_payload(b"Subject: hardening\r\n\r\nAUTH PLAIN stays in a body\r\n")
PASSWORD = "s3cretPW"


def _no_verify() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@pytest.fixture
def accounts(tmp_path: Path) -> Path:
    path = tmp_path / "accounts"
    path.write_text(f"alice:{PASSWORD}\nops=team:token-1\n")
    return path


# -- TCP_NODELAY -------------------------------------------------------------------------


def test_an_smtps_greeting_is_not_held_back_by_nagle() -> None:
    """TLS 1.3's session tickets, then the greeting: without TCP_NODELAY the greeting
    waits for the client's delayed ACK (about 40 ms on Linux) instead of well under 1."""
    with our_sink("--smtps") as sink:
        times = []
        for _ in range(5):
            client = SmtpClient(f"smtps://{sink.address}", tls_context=_no_verify())
            start = time.perf_counter()
            assert client.connect().code == 220
            times.append(time.perf_counter() - start)
            client.quit()
    assert statistics.median(times) < 0.020, times


# -- --record without credentials --------------------------------------------------------


def _recorded(record: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(record.iterdir())]


def test_recordings_keep_the_mechanism_but_not_the_credentials(
    accounts: Path, tmp_path: Path
) -> None:
    record = tmp_path / "record"
    with our_sink("--auth-file", str(accounts), record=record) as sink:
        for name in ("PLAIN", "LOGIN"):
            client = SmtpClient(sink.address)
            client.connect()
            client.ehlo("me")
            assert client.auth(name, "alice", PASSWORD).code == 235
            client.send_mail("a@x", ["b@y"], PAYLOAD)
            client.quit()
    assert (sink.counts["auth"], sink.counts["messages"]) == (2, 2)
    plain, login = _recorded(record)
    secrets = [
        PASSWORD.encode(),
        base64.b64encode(PASSWORD.encode()),
        base64.b64encode(b"\0alice\0" + PASSWORD.encode()),
    ]
    assert not [s for s in secrets if s in plain or s in login]
    dialogue = b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n" + PAYLOAD + b"QUIT\r\n"
    assert plain == b"EHLO me\r\nAUTH PLAIN ****\r\n" + dialogue
    assert login == b"EHLO me\r\nAUTH LOGIN\r\n****\r\n****\r\n" + dialogue


CRAM = base64.b64encode(b"alice 0123456789abcdef")
PLAIN = base64.b64encode(b"\0alice\0" + PASSWORD.encode())
TRANSACTION = b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"
CONTENT = (
    b"DATA\r\nAUTH PLAIN x\r\n\r\n.\r\n"
    + TRANSACTION
    + b"BDAT 20\r\nAUTH PLAIN y\r\nAUTH \nBDAT 0 LAST\r\n"
)
CLIENT_BYTES = (
    b"EHLO me\r\nAUTH CRAM-MD5\r\n" + CRAM + b"\r\nauth  plain " + PLAIN + b"\r\n"
    + TRANSACTION + CONTENT + b"AUTH X Y\r\nQUIT\r\n"
)  # fmt: skip
REDACTED = (
    b"EHLO me\r\nAUTH CRAM-MD5\r\n****\r\nauth plain ****\r\n"
    + TRANSACTION + CONTENT + b"AUTH X ****\r\nQUIT\r\n"
)  # fmt: skip


def _challenge_out(replies: bytes) -> bytes:
    """The replies without CRAM-MD5's challenge (random)."""
    return re.sub(rb"\n334 \S+", b"\n334 challenge", replies)


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(CLIENT_BYTES)])
def test_the_recorder_redacts_whatever_the_reads(size: int, tmp_path: Path) -> None:
    """Only AUTH lines and the responses to its challenges are redacted, however the bytes
    arrive; message content (DATA or BDAT) that looks like AUTH is not; the session
    replies as it does unrecorded."""
    config = SinkConfig(credentials={"alice": PASSWORD})
    path = tmp_path / "c"
    session = Session(config, Counters(auth=0))
    recorder = Recorder(path, session)
    replies = b"".join(
        recorder.feed(CLIENT_BYTES[at : at + size]) for at in range(0, len(CLIENT_BYTES), size)
    )
    recorder.close()
    assert path.read_bytes() == REDACTED
    unrecorded = Session(config, Counters(auth=0)).feed(CLIENT_BYTES)
    assert _challenge_out(replies) == _challenge_out(unrecorded)
    assert replies.count(b"250 2.0.0 Ok: queued") == 2 and session.closing
    assert (session.counters.auth, session.counters.auth_failed) == (1, 1)


def test_an_auth_line_cut_short_is_redacted(tmp_path: Path) -> None:
    session = Session(SinkConfig(credentials={"alice": PASSWORD}), Counters(auth=0))
    recorder = Recorder(tmp_path / "c", session)
    recorder.feed(b"EHLO me\r\nAUTH LOGIN\r\n")
    recorder.feed(b"YWxpY2U=\r\nczNjcmV0")  # the connection ends in the password
    recorder.close()
    assert (tmp_path / "c").read_bytes() == b"EHLO me\r\nAUTH LOGIN\r\n****\r\n****"


def test_an_over_long_auth_line_is_not_recorded(tmp_path: Path) -> None:
    session = Session(SinkConfig(credentials={"alice": PASSWORD}), Counters(auth=0))
    recorder = Recorder(tmp_path / "c", session)
    replies = recorder.feed(b"AUTH XOAUTH2 " + b"A" * 13000)
    replies += recorder.feed(b"A" * 100 + b"\r\nQUIT\r\n")
    recorder.close()
    assert replies.startswith(b"500 ")
    assert (tmp_path / "c").read_bytes() == b"AUTH XOAUTH2 ****\r\nQUIT\r\n"


# -- no STARTTLS inside SMTPS ------------------------------------------------------------


def _reply(stream: object) -> bytes:
    lines = []
    while not lines or lines[-1][3:4] == b"-":
        lines.append(stream.readline())  # type: ignore[attr-defined]
    return b"".join(lines)


def test_an_smtps_session_neither_offers_nor_takes_starttls() -> None:
    with our_sink("--smtps", "--starttls") as sink:
        host, port = sink.address.rsplit(":", 1)
        with _no_verify().wrap_socket(socket.create_connection((host, int(port)))) as tls:
            stream = tls.makefile("rb")
            assert _reply(stream).startswith(b"220 ")
            tls.sendall(b"EHLO me\r\n")
            ehlo = _reply(stream)
            assert ehlo.startswith(b"250-") and b"STARTTLS" not in ehlo
            tls.sendall(b"STARTTLS\r\n")
            assert _reply(stream).startswith(b"503 ")
            tls.sendall(b"QUIT\r\n")
            assert _reply(stream).startswith(b"221 ")
    assert (sink.counts["tls"], sink.counts["tls_failed"]) == (1, 0)


# -- OAUTHBEARER's authzid (RFC 7628 §3.1, RFC 5801 §4) -----------------------------------


def test_oauthbearer_escapes_comma_and_equals_in_the_user_name() -> None:
    command = mechanism("OAUTHBEARER", "a,b=c", "tok").command()
    initial = b"n,a=a=2Cb=3Dc,\x01auth=Bearer tok\x01\x01"
    assert command == b"AUTH OAUTHBEARER " + base64.b64encode(initial) + b"\r\n"


def test_the_sink_unescapes_the_oauthbearer_user_name() -> None:
    session = Session(SinkConfig(credentials={"a,b=c": "tok"}), Counters(auth=0))
    initial = base64.b64encode(b"n,a=a=2Cb=3Dc,\x01auth=Bearer tok\x01\x01")
    assert session.feed(b"AUTH OAUTHBEARER " + initial + b"\r\n").startswith(b"235 ")


def test_oauthbearer_with_an_equals_sign_in_the_user_against_the_sink(accounts: Path) -> None:
    """(The sink's --auth-file cuts a line at its first ``:`` or ``,``: a user name there
    cannot hold a comma.)"""
    with our_sink("--auth-file", str(accounts)) as sink:
        client = SmtpClient(sink.address)
        client.connect()
        client.ehlo("me")
        assert client.auth("OAUTHBEARER", "ops=team", "token-1").code == 235
        client.quit()
        port = int(sink.address.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as raw:
            stream = raw.makefile("rb")
            _reply(stream)
            escaped = base64.b64encode(b"n,a=ops=3Dteam,\x01auth=Bearer token-1\x01\x01")
            raw.sendall(b"EHLO me\r\nAUTH OAUTHBEARER " + escaped + b"\r\n")
            _reply(stream)
            assert _reply(stream).startswith(b"235 ")
            raw.sendall(b"QUIT\r\n")
            _reply(stream)
    assert (sink.counts["auth"], sink.counts["auth_failed"]) == (2, 0)
