"""TLS and AUTH against a private real Postfix (STARTTLS, SMTPS, AUTH through Dovecot SASL,
``smtpd_tls_auth_only``), started in its own directory by tests/postfix_peer.py."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
from postfix_peer import Peer, available, postfix_peer
from servers import IN_CI, LOCUST_SMTP


@pytest.fixture(scope="module")
def peer() -> Iterator[Peer]:
    missing = available()
    if missing is not None:
        if IN_CI:
            pytest.fail(f"private Postfix peer: {missing}; .ci/run must provide it")
        pytest.skip(f"private Postfix peer: {missing}")
    with postfix_peer() as running:
        yield running


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LOCUST_SMTP, *args], capture_output=True, text=True, timeout=120)


def trust(peer: Peer) -> list[str]:
    return ["--tls-ca", str(peer.cert), "--tls-server-name", "localhost"]


def sasl_logins(peer: Peer, method: str) -> int:
    log = peer.log.read_text(errors="replace") if peer.log.exists() else ""
    return len(re.findall(rf"sasl_method={method}, sasl_username={peer.user}", log))


def test_a_starttls_and_auth_plain_load(peer: Peer) -> None:
    before = sasl_logins(peer, "PLAIN")
    proc = run("--starttls", *trust(peer), "--auth", "plain", "--auth-user", peer.user,
               "--auth-password", peer.password, "-s", "4", "-m", "40", peer.smtp)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "40 messages" in proc.stderr and "40 accepted" in proc.stderr
    for stage in ("STARTTLS", "TLS handshake", "AUTH"):
        assert re.search(rf"^{stage}\s+40\s+0\s", proc.stderr, re.M), proc.stderr
    assert sasl_logins(peer, "PLAIN") - before == 40  # Postfix's own log, per message


def test_an_smtps_and_auth_login_load(peer: Peer) -> None:
    before = sasl_logins(peer, "LOGIN")
    login = ("--auth", "login", "--auth-user", peer.user, "--auth-password", peer.password)
    proc = run("--smtps", *trust(peer), *login, "-s", "2", "-d", "-m", "20", peer.smtps)
    assert proc.returncode == 0, proc.stderr
    assert "20 accepted" in proc.stderr
    # Postfix logs the session's SASL login with every message it queues
    assert sasl_logins(peer, "LOGIN") - before == 20


def test_a_wrong_password_is_auth_535(peer: Peer) -> None:
    proc = run("--starttls", *trust(peer), "--auth", "plain", "--auth-user", peer.user,
               "--auth-password", "wrong", "-m", "1", peer.smtp)  # fmt: skip
    assert proc.returncode == 1
    assert "fatal: authentication failed: 535 5.7.8" in proc.stderr
    assert "wrong" not in proc.stderr.replace("wrong password", "")


def test_auth_before_starttls_is_refused(peer: Peer) -> None:
    """smtpd_tls_auth_only: no AUTH in the clear, even when the client insists."""
    proc = run("--auth", "plain", "--auth-plaintext", "--auth-user", peer.user,
               "--auth-password", peer.password, "-m", "1", peer.smtp)  # fmt: skip
    assert proc.returncode == 1
    # Postfix does not even list AUTH in the clear
    assert "fatal: AUTH PLAIN not offered by the server" in proc.stderr, proc.stderr
    assert "offer AUTH only after STARTTLS" in proc.stderr


def test_an_untrusted_certificate_is_a_certificate_failure(peer: Peer) -> None:
    proc = run("--starttls", "-m", "1", peer.smtp)
    assert proc.returncode == 1
    assert "certificate not trusted" in proc.stderr
    assert "TLS handshake certificate (TlsError)" in proc.stderr
