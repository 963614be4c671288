"""SMTP AUTH: the mechanisms, the client, SmtpUser, against the bundled sink (PLAIN, LOGIN,
CRAM-MD5 checked against a credentials file) and aiosmtpd-free fakes for the OAuth ones."""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import our_sink, run_users, scripted_server, stage_rows

from locust_smtp import SmtpClient, data_payload
from locust_smtp.protocol import stages
from locust_smtp.protocol._auth import mechanism

PAYLOAD = data_payload(b"Subject: auth\r\n\r\nhello\r\n")


def test_the_mechanisms_send_what_their_rfcs_say() -> None:
    assert (
        mechanism("plain", "u", "p").command()
        == b"AUTH PLAIN " + base64.b64encode(b"\0u\0p") + b"\r\n"
    )
    login = mechanism("LOGIN", "u", "p")
    assert login.command() == b"AUTH LOGIN\r\n"
    assert login.respond(b"Username:") == base64.b64encode(b"u") + b"\r\n"
    assert login.respond(b"Password:") == base64.b64encode(b"p") + b"\r\n"
    cram = mechanism("CRAM-MD5", "tim", "tanstaaftanstaaf")
    assert cram.command() == b"AUTH CRAM-MD5\r\n"
    # RFC 2195's example
    answer = cram.respond(b"<1896.697170952@postoffice.reston.mci.net>")
    assert base64.b64decode(answer) == b"tim b913a602c7eda7a495b4e6e7334d3890"
    xoauth2 = mechanism("XOAUTH2", "u@x", "tok")
    assert base64.b64decode(xoauth2.command().split()[2]) == b"user=u@x\x01auth=Bearer tok\x01\x01"
    bearer = mechanism("OAUTHBEARER", "u@x", "tok")
    assert base64.b64decode(bearer.command().split()[2]) == b"n,a=u@x,\x01auth=Bearer tok\x01\x01"
    assert bearer.respond(b'{"status":"invalid_token"}') == base64.b64encode(b"\x01") + b"\r\n"


@pytest.mark.parametrize(
    ("name", "answered"),
    [("PLAIN", 1), ("LOGIN", 2), ("CRAM-MD5", 1), ("XOAUTH2", 1), ("OAUTHBEARER", 1)],
)
def test_a_server_that_keeps_challenging_is_a_protocol_error(name: str, answered: int) -> None:
    """Each mechanism answers as many 334 challenges as its RFC has, then gives up."""
    from locust_smtp.protocol._errors import LocalProtocolError

    sasl = mechanism(name, "u", "p")
    for _ in range(answered):
        sasl.respond(b"challenge")
    with pytest.raises(LocalProtocolError, match="keeps challenging"):
        sasl.respond(b"challenge")


def test_the_sink_takes_an_oauth_token_of_rfc_4954s_line_length() -> None:
    """AUTH lines may be 12288 octets (RFC 4954 §4), arriving in pieces; other commands
    stay at 4096."""
    from locust_smtp.sink.state import Counters, Session, SinkConfig

    token = "t" * 8000
    session = Session(SinkConfig(credentials={"alice": token}), Counters(auth=0))
    line = b"AUTH XOAUTH2 " + base64.b64encode(
        f"user=alice\x01auth=Bearer {token}\x01\x01".encode()
    )
    assert session.feed(line[:6000]) == b""  # no reply yet: the line goes on
    assert session.feed(line[6000:] + b"\r\n").startswith(b"235 ")
    assert session.feed(b"NOOP " + b"x" * 6000).startswith(b"500 ")
    assert session.counters.auth == 1


@pytest.fixture
def accounts(tmp_path: Path) -> Path:
    path = tmp_path / "accounts"
    path.write_text("alice:wonderland\nbob:builder\n")
    return path


@pytest.fixture
def sink(accounts: Path) -> Iterator[Any]:
    with our_sink("--starttls", "--auth-file", str(accounts)) as handle:
        yield handle


def _tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@pytest.mark.parametrize("name", ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER"])
def test_each_mechanism_against_the_sink_and_a_wrong_password(name: str, sink: Any) -> None:
    seen: list[tuple[str, str | None]] = []
    trace: list[str] = []
    client = SmtpClient(
        sink.address,
        tls_context=_tls(),
        on_stage=lambda stage, *a: seen.append((stage, None if a[-1] is None else repr(a[-1]))),
        trace=trace.append,
    )
    client.connect()
    client.ehlo("me")
    client.starttls()
    assert "AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER" in client.ehlo("me").text
    assert client.auth(name, "alice", "wonderland").code == 235
    client.send_mail("alice@x", ["b@y"], PAYLOAD)
    client.quit()
    client.connect()
    client.ehlo("me")
    client.starttls()
    client.ehlo("me")
    assert client.auth(name, "alice", "wrong").code == 535
    client.quit()
    auth = [s for s in seen if s[0] == stages.AUTH]
    assert auth == [(stages.AUTH, None), (stages.AUTH, "PermanentReplyError('AUTH', 535, '5.7.8')")]
    # the trace shows the mechanism, never the credentials: not the password, not one of
    # the base64 strings that carried it (CRAM-MD5 sends only a digest)
    sent = [base64.b64encode(b"wonderland").decode()]
    initial = mechanism(name, "alice", "wonderland").command().split()
    if len(initial) > 2:
        sent.append(initial[2].decode())
    assert not [line for line in trace if any(s in line for s in ["wonderland", *sent])]
    outgoing = {line for line in trace if not line.startswith("<<<")}
    shown = {f"AUTH {name} (as alice)", f"AUTH {name} **** (as alice)"}
    assert {line for line in outgoing if "AUTH" in line} <= shown
    assert {line for line in outgoing if "AUTH" in line}


def test_the_sink_counts_successes_and_failures(accounts: Path) -> None:
    with our_sink("--auth-file", str(accounts)) as sink:
        client = SmtpClient(sink.address)
        for password in ("builder", "nope", "builder"):
            client.connect()
            client.ehlo("me")
            client.auth("PLAIN", "bob", password)
            client.quit()
    assert (sink.counts["auth"], sink.counts["auth_failed"]) == (2, 1)


@pytest.mark.parametrize("name", ["XOAUTH2", "OAUTHBEARER"])
def test_oauth_mechanisms_answer_the_error_challenge_then_get_the_refusal(name: str) -> None:
    """A server refusing the token sends a JSON error as a 334 challenge; the client
    acknowledges it and the server ends with 535 (Microsoft 365 and Gmail do this)."""
    received: list[bytes] = []

    def server(sock: Any) -> None:
        from servers import read_line

        buf = bytearray()
        sock.sendall(b"220 hi\r\n")
        received.append(read_line(sock, buf))  # EHLO
        sock.sendall(b"250-hi\r\n250 AUTH XOAUTH2 OAUTHBEARER\r\n")
        received.append(read_line(sock, buf))  # AUTH ...
        error = base64.b64encode(b'{"status":"401","schemes":"bearer"}')
        sock.sendall(b"334 " + error + b"\r\n")
        received.append(read_line(sock, buf))  # the acknowledgement
        sock.sendall(b"535 5.7.3 Authentication unsuccessful\r\n")
        read_line(sock, buf)

    with scripted_server(server) as address:
        client = SmtpClient(address)
        client.connect()
        client.ehlo("me")
        reply = client.auth(name, "u@x", "token")
        client.close()
    assert reply.code == 535
    assert received[1].startswith(f"AUTH {name} ".encode())
    assert received[2].rstrip(b"\r\n") == (b"AQ==" if name == "OAUTHBEARER" else b"")


def test_a_user_authenticates_each_connection_with_its_own_account(
    accounts: Path, tmp_path: Path
) -> None:

    from locust_smtp import SmtpUser

    table = tmp_path / "accounts.csv"
    table.write_text("alice,wonderland\nbob,builder\n")
    with our_sink("--starttls", "--auth-file", str(accounts)) as sink:

        class Submitter(SmtpUser):
            host = sink.address
            starttls = "required"
            tls_verify = False
            auth_mechanism = "LOGIN"
            auth_credentials_file = str(table)

        environment = run_users(Submitter, 2, 6)
    rows = stage_rows(environment)
    assert rows["message"] == (6, 0)
    assert rows["AUTH"] == (6, 0)
    assert (sink.counts["auth"], sink.counts["auth_failed"], sink.counts["messages"]) == (6, 0, 6)


def test_auth_in_the_clear_needs_an_explicit_yes(accounts: Path) -> None:

    from locust_smtp import SmtpUser

    with our_sink("--auth-file", str(accounts)) as sink:  # no STARTTLS

        class Clear(SmtpUser):
            host = sink.address
            auth_mechanism = "PLAIN"
            auth_username = "alice"
            auth_password = "wonderland"

        environment = run_users(Clear, 1, 2)
    errors = {e.name: e.error for e in environment.stats.errors.values()}
    assert repr(errors["AUTH"]) == "NotOffered('AUTH', 'STARTTLS')"
    assert "not encrypted" in str(errors["AUTH"])
    assert sink.counts["auth"] == 0 and sink.counts["messages"] == 0


def _command(*args: str) -> Any:
    import subprocess

    from servers import LOCUST_SMTP

    return subprocess.run([*LOCUST_SMTP, *args], capture_output=True, text=True, timeout=60)


def test_the_command_with_starttls_and_auth(accounts: Path, tmp_path: Path) -> None:
    table = tmp_path / "accounts.csv"
    table.write_text("alice,wonderland\nbob,builder\n")
    tls = ("--starttls", "--tls-no-verify")
    with our_sink("--starttls", "--auth-file", str(accounts)) as sink:
        ok = _command(*tls, "--auth", "cram-md5", "--auth-credentials", str(table), "-s", "2",
                      "-m", "6", "-v", sink.address)  # fmt: skip
        wrong = _command(*tls, "--auth", "plain", "--auth-user", "bob", "--auth-password", "nope",
                         "-m", "2", sink.address)  # fmt: skip
        clear = _command("--auth", "plain", "--auth-user", "bob", "--auth-password", "x",
                         "-m", "2", sink.address)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "AUTH CRAM-MD5" in ok.stderr and "wonderland" not in ok.stderr
    assert wrong.returncode == 1
    assert "fatal: authentication failed: 535 5.7.8" in wrong.stderr
    assert "nope" not in wrong.stderr
    assert clear.returncode == 1 and "not encrypted" in clear.stderr
    assert (sink.counts["auth"], sink.counts["auth_failed"], sink.counts["messages"]) == (6, 1, 6)


def test_bad_auth_options_are_usage_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("only-a-name\n")
    for args, text in (
        (("--auth", "NTLM", "--auth-user", "u"), "fatal: bad AUTH mechanism: NTLM"),
        (("--auth", "PLAIN"), "fatal: --auth needs --auth-user"),
        (("--auth", "PLAIN", "--auth-credentials", str(bad)), "not username,password rows"),
    ):
        proc = _command(*args, "127.0.0.1:9")
        assert proc.returncode == 1 and text in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def test_sessions_on_different_workers_use_different_accounts(
    accounts: Path, tmp_path: Path
) -> None:
    """Two workers, 4 sessions, 4 accounts: every account used, each by one session (the
    master hands out the rows)."""
    table = tmp_path / "accounts.csv"
    table.write_text("".join(f"user{n},pw{n}\n" for n in range(4)))
    sink_accounts = tmp_path / "sink-accounts"
    sink_accounts.write_text("".join(f"user{n}:pw{n}\n" for n in range(4)))
    # replies wait 50 ms (a message takes 0.3 s): every session is running, on a busy
    # machine too, before the 40 messages run out
    with our_sink("--starttls", "--auth-file", str(sink_accounts), "--delay", "0.05") as sink:
        proc = _command("--starttls", "--tls-no-verify", "--auth", "plain", "--auth-credentials",
                        str(table), "-s", "4", "-d", "-v", "-m", "40", sink.address,
                        "--", "--processes", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # -v shows each session's AUTH with its account (never the password); two workers
    # write to one stderr, so a line may hold pieces of another
    users = re.findall(r"AUTH PLAIN \*\*\*\* \(as (user\d)\)", proc.stderr)
    assert sorted(users) == ["user0", "user1", "user2", "user3"], proc.stderr[-3000:]
    assert sink.counts["messages"] == 40, (proc.stdout, proc.stderr[-3000:], sink.output)


def test_the_sink_checks_a_password_that_is_not_ascii(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts"
    accounts.write_text("alice:wünderland\n", encoding="utf-8")
    with our_sink("--auth-file", str(accounts)) as sink:
        client = SmtpClient(sink.address)
        client.connect()
        client.ehlo("me")
        assert client.auth("PLAIN", "alice", "wünderland").code == 235
        client.quit()
        client.connect()
        client.ehlo("me")
        assert client.auth("PLAIN", "alice", "wonderland").code == 535
        client.quit()
    assert (sink.counts["auth"], sink.counts["auth_failed"]) == (1, 1)


def test_rows_are_handed_out_lowest_free_first_and_given_back() -> None:
    from locust.env import Environment

    from locust_smtp.plugin.accounts import AccountNumbers

    environment = Environment()  # no runner: counted here
    numbers = AccountNumbers()
    taken = [numbers.take(environment) for _ in range(4)]
    numbers.give_back(environment, 2)
    numbers.give_back(environment, 0)
    assert taken == [0, 1, 2, 3]
    assert [numbers.take(environment) for _ in range(3)] == [0, 2, 4]


def test_users_started_again_take_the_accounts_that_are_free(tmp_path: Path) -> None:
    """4 users, then 2, then 4 again, 4 accounts: the running users never share one."""
    import gevent
    from locust import constant
    from locust.env import Environment

    from locust_smtp import SmtpUser

    table = tmp_path / "accounts.csv"
    table.write_text("".join(f"user{n},pw{n}\n" for n in range(4)))
    sink_accounts = tmp_path / "sink-accounts"
    sink_accounts.write_text("".join(f"user{n}:pw{n}\n" for n in range(4)))
    with our_sink("--auth-file", str(sink_accounts), "--delay", "0.005") as sink:

        class Submitter(SmtpUser):
            host = sink.address
            auth_mechanism = "PLAIN"
            auth_allow_plaintext = True
            auth_credentials_file = str(table)
            reuse_connection = True
            wait_time = constant(0.01)

        environment = Environment(user_classes=[Submitter])
        runner = environment.create_local_runner()

        def accounts_held(count: int) -> list[str]:
            """The accounts of the running users, once all ``count`` have logged in."""
            with gevent.Timeout(30):
                while True:
                    users = [g.args[0] for g in runner.user_greenlets]
                    held = [u._credentials[0] for u in users if u._account_number is not None]
                    if len(users) == count and len(held) == count:
                        return sorted(held)
                    gevent.sleep(0.01)

        runner.start(4, spawn_rate=100)
        first = accounts_held(4)
        runner.start(2, spawn_rate=100)
        fewer = accounts_held(2)
        runner.start(4, spawn_rate=100)
        again = accounts_held(4)
        runner.quit()
    assert first == again == ["user0", "user1", "user2", "user3"]
    assert len(set(fewer)) == 2
    assert sink.counts["auth_failed"] == 0
