"""STARTTLS and implicit TLS (smtps://) in the client, against aiosmtpd in a child process
with a certificate from a test CA (trustme)."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import aiosmtpd_server, run_users, smtp_sink, stage_rows

from locust_smtp import SmtpClient, TlsError, data_payload
from locust_smtp.protocol import stages

trustme = pytest.importorskip("trustme")
PAYLOAD = data_payload(b"Subject: tls\r\n\r\nhello\r\n")


@pytest.fixture(scope="module")
def ca() -> Any:
    return trustme.CA()


@pytest.fixture(scope="module")
def cert_files(ca: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The server's certificate chain and key, for the names localhost and 127.0.0.1."""
    cert = ca.issue_cert("localhost", "127.0.0.1")
    folder = tmp_path_factory.mktemp("cert")
    chain, key = folder / "chain.pem", folder / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    return str(chain), str(key)


def trusting(ca: Any) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


class Stages:
    """An on_stage callback keeping (stage, failure repr or None)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    def __call__(self, stage: str, *args: Any) -> None:
        exception = args[-1]
        self.seen.append((stage, None if exception is None else repr(exception)))


@pytest.fixture
def starttls_server(cert_files: tuple[str, str]) -> Iterator[tuple[str, Path]]:
    with aiosmtpd_server(tls="starttls", cert=cert_files) as server:
        yield server


def messages(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_starttls_then_ehlo_then_a_message(ca: Any, starttls_server: tuple[str, Path]) -> None:
    address, log = starttls_server
    seen = Stages()
    client = SmtpClient(address, tls_context=trusting(ca), on_stage=seen)
    client.connect()
    assert "STARTTLS" in client.ehlo("me.example").text
    assert client.starttls().code == 220
    assert client.session.extensions.keywords == {}  # forgotten: ask again
    assert client.ehlo("me.example").code == 250
    result = client.send_mail("a@x.example", ["b@y.example"], PAYLOAD)
    client.quit()
    assert result.accepted == ("b@y.example",)
    assert [m["to"] for m in messages(log)] == [["b@y.example"]]
    assert seen.seen[:5] == [
        (stages.CONNECT, None),
        (stages.BANNER, None),
        (stages.EHLO, None),
        (stages.STARTTLS, None),
        (stages.TLS, None),
    ]


def test_mail_before_starttls_is_refused_by_a_server_that_requires_it(
    starttls_server: tuple[str, Path],
) -> None:
    address, _log = starttls_server
    client = SmtpClient(address)
    client.connect()
    client.ehlo("me.example")
    with pytest.raises(Exception) as refused:
        client.send_mail("a@x.example", ["b@y.example"], PAYLOAD)
    assert "530" in str(refused.value)


def test_smtps_speaks_tls_before_the_greeting_and_resumes_the_session(
    ca: Any, cert_files: tuple[str, str]
) -> None:
    with aiosmtpd_server(tls="smtps", cert=cert_files) as (address, log):
        seen = Stages()
        client = SmtpClient(f"smtps://{address}", tls_context=trusting(ca), on_stage=seen)
        resumed = []
        for _ in range(2):
            assert client.connect().code == 220
            client.ehlo("me.example")
            client.send_mail("a@x.example", ["b@y.example"], PAYLOAD)
            client.quit()
            resumed.append(client.tls_resumed)
        assert len(messages(log)) == 2
    assert seen.seen[:3] == [(stages.CONNECT, None), (stages.TLS, None), (stages.BANNER, None)]
    assert resumed == [False, True]


def test_an_untrusted_certificate_is_a_certificate_failure(
    starttls_server: tuple[str, Path],
) -> None:
    address, _log = starttls_server
    seen = Stages()
    client = SmtpClient(address, on_stage=seen)  # the system's CAs: not our test CA
    client.connect()
    client.ehlo("me.example")
    with pytest.raises(TlsError) as failed:
        client.starttls()
    assert failed.value.kind == "certificate"
    assert "certificate not trusted" in str(failed.value)
    assert seen.seen[-1] == (stages.TLS, "TlsError('TLS handshake', 'certificate')")
    assert not client.connected


def test_smtps_to_a_plaintext_port_is_a_protocol_failure_not_a_timeout() -> None:
    with smtp_sink() as address:
        client = SmtpClient(f"smtps://{address}", timeout=10)
        with pytest.raises(TlsError) as failed:
            client.connect()
    assert failed.value.kind == "protocol"
    assert "does not speak TLS on this port" in str(failed.value)


# -- SmtpUser ---------------------------------------------------------------------------------


def _run(user_class: type, users: int = 2, timeout: float = 30) -> Any:
    from locust.env import Environment

    from locust_smtp.plugin.options import install_pool

    environment = Environment(user_classes=[user_class])
    runner = environment.create_local_runner()
    install_pool(environment, 6)
    runner.start(users, spawn_rate=users)
    runner.spawning_greenlet.join(timeout)
    runner.user_greenlets.join(timeout=timeout)
    assert runner.user_count == 0, "users did not stop by themselves"
    runner.quit()
    return environment


def _rows(environment: Any) -> dict[str, tuple[int, int]]:
    from locust_smtp.plugin.recorder import recorder_of

    recorder_of(environment).flush()
    return {
        name: (e.num_requests, e.num_failures)
        for (name, kind), e in environment.stats.entries.items()
        if kind == "SMTP"
    }


def test_a_user_with_starttls_required_sends_over_tls(
    ca: Any, starttls_server: tuple[str, Path], tmp_path: Path
) -> None:
    from locust_smtp import SmtpUser

    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    address, log = starttls_server

    class OverTls(SmtpUser):
        host = address
        starttls = "required"
        tls_ca_file = str(ca_file)
        tls_server_name = "localhost"

    rows = _rows(_run(OverTls))
    assert rows["message"] == (6, 0)
    assert rows["STARTTLS"] == rows["TLS handshake"] == (6, 0)  # a connection per message
    assert rows["EHLO"] == (12, 0)  # before and after STARTTLS
    assert len(messages(log)) == 6


def test_starttls_required_but_not_offered_fails_each_message_clearly() -> None:
    from servers import our_sink

    from locust_smtp import SmtpUser

    with our_sink() as sink:  # offers no STARTTLS

        class Required(SmtpUser):
            host = sink.address
            starttls = "required"

        environment = _run(Required, users=1)
        rows = _rows(environment)
    assert rows["message"] == (6, 6)
    assert rows["STARTTLS"] == (6, 6)
    errors = {
        repr(e.error) if not isinstance(e.error, str) else e.error
        for e in environment.stats.errors.values()
    }
    assert "NotOffered('STARTTLS', 'STARTTLS')" in errors
    assert sink.counts["messages"] == 0


def test_starttls_opportunistic_goes_on_in_the_clear_when_not_offered() -> None:
    from servers import our_sink

    from locust_smtp import SmtpUser

    with our_sink() as sink:

        class Opportunistic(SmtpUser):
            host = sink.address
            starttls = "opportunistic"

        rows = _rows(_run(Opportunistic, users=1))
    assert rows["message"] == (6, 0) and "STARTTLS" not in rows
    assert sink.counts["messages"] == 6


def test_bad_tls_settings_are_a_clear_error() -> None:
    from locust.env import Environment
    from locust.exception import LocustError

    from locust_smtp import SmtpUser

    class Bad(SmtpUser):
        host = "smtps://127.0.0.1:465"
        tls_min_version = "SSLv3"

    with pytest.raises(LocustError, match="bad TLS settings: tls minimum version"):
        Bad(Environment(user_classes=[Bad]))


# -- the bundled sink -------------------------------------------------------------------------


def test_the_sink_offers_starttls_and_counts_its_sessions() -> None:
    from servers import our_sink

    with our_sink("--starttls") as sink:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        client = SmtpClient(sink.address, tls_context=context)
        for _ in range(3):
            client.connect()
            assert "STARTTLS" in client.ehlo("me.example").text
            assert client.starttls().code == 220
            assert "STARTTLS" not in client.ehlo("me.example").text  # not twice
            client.send_mail("a@x.example", ["b@y.example"], PAYLOAD)
            client.quit()
    assert sink.counts["messages"] == 3
    assert sink.counts["tls"] == 3
    assert sink.counts["resumed"] == 2  # the second and third connections resumed
    assert sink.counts["tls_failed"] == 0


def test_the_sink_speaks_smtps_with_a_certificate_a_client_can_trust(tmp_path: Path) -> None:
    from servers import our_sink

    cert = tmp_path / "sink.pem"
    with our_sink("--smtps", "--tls-cert-out", str(cert)) as sink:
        context = ssl.create_default_context(cafile=str(cert))
        client = SmtpClient(f"smtps://{sink.address}", tls_context=context)
        client.connect()
        client.helo("me.example")
        client.send_mail("a@x.example", ["b@y.example"], PAYLOAD)
        client.quit()
        # a client that does not trust it: counted as a failed handshake on the sink too
        with pytest.raises(TlsError):
            SmtpClient(f"smtps://{sink.address}", timeout=10).connect()
    assert (sink.counts["messages"], sink.counts["tls"], sink.counts["tls_failed"]) == (1, 1, 1)


def test_the_sink_discards_what_came_in_the_clear_after_starttls() -> None:
    """RFC 3207: commands pipelined after STARTTLS are not run (an injection would be)."""
    import socket as pysocket

    from servers import our_sink

    with our_sink("--starttls") as sink:
        host, port = sink.address.rsplit(":", 1)
        with pysocket.create_connection((host, int(port)), timeout=5) as sock:
            reader = sock.makefile("rb")
            reader.readline()
            sock.sendall(b"EHLO me\r\nSTARTTLS\r\nMAIL FROM:<x@y>\r\n")
            lines = []
            while not lines or not lines[-1].startswith(b"220"):
                lines.append(reader.readline())
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            with context.wrap_socket(sock, server_hostname="localhost") as tls:
                tls.sendall(b"RCPT TO:<a@b>\r\n")
                # MAIL was discarded: RCPT without MAIL
                assert tls.recv(100).startswith(b"503")
    assert lines[-1].startswith(b"220 2.0.0")


# -- the locust-smtp command ------------------------------------------------------------------


def _command(*args: str) -> Any:
    import subprocess

    from servers import LOCUST_SMTP

    return subprocess.run([*LOCUST_SMTP, *args], capture_output=True, text=True, timeout=60)


def test_the_command_with_starttls_sends_every_message_over_tls() -> None:
    from servers import our_sink

    with our_sink("--starttls") as sink:
        proc = _command("--starttls", "--tls-no-verify", "-s", "2", "-m", "10", sink.address)
    assert proc.returncode == 0, proc.stderr
    assert (sink.counts["messages"], sink.counts["tls"]) == (10, 10)
    assert sink.counts["resumed"] >= 8  # each session resumes its previous TLS session
    rows = {line.split()[0] for line in proc.stderr.splitlines() if line}
    assert {"STARTTLS", "TLS", "EHLO"} <= rows


def test_the_command_with_smtps_keeps_one_tls_session_per_connection() -> None:
    from servers import our_sink

    with our_sink("--smtps") as sink:
        proc = _command("--smtps", "--tls-no-verify", "-s", "2", "-d", "-m", "10", sink.address)
    assert proc.returncode == 0, proc.stderr
    assert (sink.counts["messages"], sink.counts["tls"]) == (10, 2)


@pytest.mark.parametrize(
    ("sink_options", "args", "fatal"),
    [
        ((), ("--starttls",), "fatal: STARTTLS not offered by the server"),
        ((), ("--smtps",), "the server does not speak TLS on this port"),
        (("--starttls",), ("--starttls",), "certificate not trusted: self-signed certificate"),
        ((), ("--smtps", "--tls-max-version", "TLS1"), "fatal: bad tls maximum version 'TLS1'"),
        ((), ("--smtps", "--starttls"), "fatal: --smtps and --starttls"),
        # a plaintext client on an SMTPS port: no greeting comes, the timeout says why
        (
            ("--smtps",),
            ("--timeout", "0.5"),
            "fatal: timeout while reading server greeting (a server that speaks TLS from the "
            "first byte sends no greeting: if so, use --smtps)",
        ),
    ],
)
def test_the_command_says_what_is_wrong_with_tls(
    sink_options: tuple[str, ...], args: tuple[str, ...], fatal: str
) -> None:
    from servers import our_sink

    with our_sink(*sink_options) as sink:
        proc = _command(*args, "-m", "2", sink.address)
    assert proc.returncode == 1
    assert fatal in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sink.counts["messages"] == 0


def test_locust_options_set_every_tls_setting(tmp_path: Path) -> None:
    """--smtp-tls-* reach the users: a wrong --smtp-tls-server-name fails verification, the
    right one with pinned versions, a cipher string and --smtp-tls-no-resume sends every
    message with a full handshake."""
    import subprocess
    import sys

    from servers import our_sink

    locustfile = Path(__file__).resolve().parent.parent / "locustfiles" / "smtp_basic.py"
    cert = tmp_path / "sink.pem"

    def locust(sink: Any, *options: str) -> Any:
        return subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary",
             "-u", "2", "-r", "2", "--host", sink.address, "--smtp-messages", "10",
             "--loglevel", "WARNING", "--smtp-starttls", "required", "--smtp-tls-ca", str(cert),
             *options],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    with our_sink("--starttls", "--tls-cert-out", str(cert)) as sink:
        wrong = locust(sink, "--smtp-tls-server-name", "elsewhere.example")
        right = locust(sink, "--smtp-tls-server-name", "localhost", "--smtp-tls-min-version",
                       "TLSv1.2", "--smtp-tls-max-version", "TLSv1.2", "--smtp-tls-ciphers",
                       "ECDHE+AESGCM", "--smtp-tls-no-resume")  # fmt: skip
    assert wrong.returncode == 1
    assert "SMTP TLS handshake: TlsError('TLS handshake', 'certificate')" in wrong.stderr
    assert right.returncode == 0, right.stderr
    # one refused handshake per message of the first run, ten full ones in the second
    counts = sink.counts
    assert (counts["messages"], counts["tls"], counts["resumed"], counts["tls_failed"]) == (
        10,
        10,
        0,
        10,
    )


def _smtps_server(context: ssl.SSLContext) -> Any:
    """An SMTPS server with ``context``: handshake, then a greeting (a scripted_server)."""
    from servers import scripted_server

    def serve(sock: Any) -> None:
        with context.wrap_socket(sock, server_side=True) as tls:
            tls.sendall(b"220 tls.test ESMTP\r\n")
            tls.recv(100)

    return scripted_server(serve)


def test_a_refused_client_certificate_is_a_certificate_failure(
    ca: Any, cert_files: tuple[str, str]
) -> None:
    """TLS 1.3: the server refuses a client without a certificate after the client thinks
    the handshake is done; the first read says so, classified, not a lost connection."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(*cert_files)
    server.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(server)
    seen = Stages()
    with _smtps_server(server) as address:
        client = SmtpClient(f"smtps://{address}", tls_context=trusting(ca), on_stage=seen)
        with pytest.raises(TlsError) as info:
            client.connect()
    assert info.value.kind == "certificate"
    assert "--tls-cert" in str(info.value)
    # reported where it showed: the greeting's read, the handshake looked done
    assert seen.seen[-1] == (stages.BANNER, "TlsError('TLS handshake', 'certificate')")


def test_no_tls_version_in_common_names_the_version_settings(
    ca: Any, cert_files: tuple[str, str]
) -> None:
    from locust_smtp.tls import client_context

    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(*cert_files)
    server.maximum_version = ssl.TLSVersion.TLSv1_2
    context = client_context(min_version="TLSv1.3")
    ca.configure_trust(context)
    with _smtps_server(server) as address, pytest.raises(TlsError) as info:
        SmtpClient(f"smtps://{address}", tls_context=context).connect()
    assert info.value.kind == "protocol"
    assert "no TLS version in common" in str(info.value)
    assert "--tls-min-version" in str(info.value)


def test_opportunistic_starttls_goes_on_in_the_clear_when_refused() -> None:
    """RFC 3207: after a refused STARTTLS the client may go on; opportunistic does."""
    from servers import our_sink

    from locust_smtp import SmtpUser

    with our_sink("--starttls", "--soft-reject", "starttls") as sink:

        class Opportunist(SmtpUser):
            host = sink.address
            starttls = "opportunistic"

        environment = run_users(Opportunist, 1, 3)
        command = _command("--starttls-if-offered", "-m", "2", sink.address)
    rows = stage_rows(environment)
    assert rows["STARTTLS"] == (3, 3)
    assert rows["message"] == (3, 0)
    assert command.returncode == 0, command.stderr
    assert "STARTTLS rejected: 450 4.3.0" in command.stderr
    assert "going on in the clear" in command.stderr
    assert sink.counts["messages"] == 5 and sink.counts["tls"] == 0


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"starttls": "required", "hello_command": "HELO"}, "starttls needs the extensions"),
        ({"auth_mechanism": "PLAIN", "hello_command": ""}, "auth_mechanism needs the extensions"),
        ({"starttls": "required", "host": "smtps://127.0.0.1:465"}, 'starttls must be "no"'),
    ],
)
def test_settings_that_would_skip_tls_are_refused(settings: dict[str, Any], says: str) -> None:
    from locust.env import Environment
    from locust.exception import LocustError

    from locust_smtp import SmtpUser

    attributes = {"host": "smtp://127.0.0.1:25", "auth_username": "u", **settings}
    user_class = type("Misconfigured", (SmtpUser,), attributes)
    with pytest.raises(LocustError, match=says):
        user_class(Environment(user_classes=[user_class]))


def test_the_command_refuses_tls_and_auth_with_o() -> None:
    for args, says in (
        (("--starttls",), "fatal: -o sends no HELO or EHLO: --starttls needs an EHLO reply"),
        (("--auth", "plain", "--auth-user", "u"), "--auth needs an EHLO reply"),
        (("--pipelining",), "--ehlo (or an ESMTP option, which implies it)"),
    ):
        proc = _command("-o", *args, "127.0.0.1:9")
        assert proc.returncode == 1 and says in proc.stderr, proc.stderr
