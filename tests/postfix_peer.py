"""A private real Postfix on loopback, with STARTTLS, an SMTPS listener and AUTH through a
private Dovecot (SASL), living entirely in its own directory.

Nothing outside that directory is read or written (``postfix -c DIR/etc``,
``queue_directory``, ``data_directory``, logs in ``DIR/log``; Dovecot with its own
``base_dir``). Needs root, Postfix and dovecot-core. Mail is discarded; AUTH is
PLAIN and LOGIN for one user. ``smtpd_tls_auth_only = yes``: AUTH is offered only
after STARTTLS (or on the SMTPS port).

Client identity: XCLIENT and XFORWARD are authorized for 127.0.0.0/8, a third smtpd
(``proxy``) expects a PROXY protocol (v1 or v2) header first
(``smtpd_upstream_proxy_protocol = haproxy``), and the addresses those name
(198.18.0.0/15, 2001:db8::/32, the command's defaults and the documentation's) are in
``mynetworks``, so their mail is relayed (and discarded) like loopback's. The maillog
names each client: ``connect from unknown[198.18.0.1]``, ``client=unknown[...]``.
``inet_protocols = all`` (listening on 127.0.0.1 only): with ``ipv4``, Postfix refuses
IPv6 addresses in XCLIENT (``501 5.5.4 Bad ADDR syntax``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dovecot_peer import stop_master
from servers import free_port

from locust_smtp.sink.certificate import self_signed

USER, PASSWORD = "loaduser", "loadpass"


@dataclass
class Peer:
    smtp: str
    """host:port of smtpd (STARTTLS, AUTH after it)."""
    smtps: str
    """host:port of the implicit-TLS smtpd."""
    proxy: str
    """host:port of the smtpd behind a PROXY protocol header (v1 or v2, as HAProxy's)."""
    cert: Path
    """Its self-signed certificate (CN localhost, 127.0.0.1), for clients to trust."""
    log: Path
    """Postfix's maillog."""
    user: str = USER
    password: str = PASSWORD


def available() -> str | None:
    """Why this peer cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (the Postfix and Dovecot masters run as root)"
    for command in ("postfix", "postconf", "dovecot", "script"):
        if shutil.which(command) is None and not Path(f"/usr/sbin/{command}").exists():
            return f"missing {command} (Debian packages postfix and dovecot-core)"
    return None


def _wait(test: object, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not test():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"postfix peer: {what}")
        time.sleep(0.05)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def postfix_peer(
    relay_lmtp: str | None = None, *, parent: str = "/tmp", settings: tuple[str, ...] = ()
) -> Iterator[Peer]:
    """``relay_lmtp``: a UNIX socket path; mail is then relayed there over LMTP (as to a
    mailbox server) instead of discarded. Its listener must let the ``postfix`` user
    connect (mode 0666, and every parent directory searchable). ``parent``: where its
    directory (queue included) is made (``/dev/shm`` puts the queue in memory);
    ``settings``: more ``name = value`` lines for its main.cf (benchmarks)."""
    transport = f"lmtp:unix:{relay_lmtp}" if relay_lmtp else "discard:peer"
    folder = Path(tempfile.mkdtemp(prefix="locust-smtp-postfix-", dir=parent))
    folder.chmod(0o755)  # postfix and dovecot traverse it
    etc, log, run = folder / "etc", folder / "log", folder / "dovecot" / "run"
    for d in (
        etc,
        folder / "spool",
        folder / "data",
        folder / "tls",
        log,
        run,
        folder / "dovecot" / "state",
    ):
        d.mkdir(parents=True)
    for d in (etc, log, folder / "spool", folder / "dovecot"):
        d.chmod(0o755)
    shutil.chown(folder / "data", "postfix", "postfix")
    cert_pem, key_pem = self_signed("localhost")
    cert, key = folder / "tls" / "cert.pem", folder / "tls" / "key.pem"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    key.chmod(0o600)
    port, sport, pport = free_port(), free_port(), free_port()
    passwd = folder / "dovecot" / "passwd"
    passwd.write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    shutil.chown(passwd, "root", "dovecot")
    passwd.chmod(0o640)
    dovecot_conf = folder / "dovecot" / "dovecot.conf"
    dovecot_conf.write_text(
        f"""instance_name = locust-smtp-sasl-{port}
base_dir = {run}
state_dir = {folder}/dovecot/state
protocols =
listen = 127.0.0.1
log_path = {log}/dovecot-sasl.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent allow_all_users=yes
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
"""
    )
    (etc / "main.cf").write_text(
        f"""compatibility_level = 3.6
queue_directory = {folder}/spool
data_directory = {folder}/data
mail_owner = postfix
maillog_file = {log}/maillog
maillog_file_prefixes = {log}
myhostname = postfix-peer.localhost
mydomain = localhost
mydestination =
relay_domains =
inet_interfaces = 127.0.0.1
inet_protocols = all
mynetworks = 127.0.0.0/8 198.18.0.0/15 [2001:db8::]/32
smtpd_authorized_xclient_hosts = 127.0.0.0/8
smtpd_authorized_xforward_hosts = 127.0.0.0/8
smtputf8_enable = yes
alias_maps =
alias_database =
local_recipient_maps =
smtpd_peername_lookup = no
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
default_transport = {transport}
relay_transport = {transport}
local_transport = {transport}
lmtp_destination_concurrency_limit = 20
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {run}/auth-postfix
smtpd_sasl_security_options = noanonymous
smtpd_tls_auth_only = yes
"""
        + "".join(f"{line}\n" for line in settings)
    )
    (etc / "master.cf").write_text(
        f"""127.0.0.1:{port} inet n - n - - smtpd
127.0.0.1:{sport} inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
127.0.0.1:{pport} inet n - n - - smtpd
  -o syslog_name=postfix/proxy
  -o smtpd_upstream_proxy_protocol=haproxy
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
    )
    postfix = ["postfix", "-c", str(etc)]
    dovecot_pid = run / "master.pid"
    try:
        subprocess.run(["dovecot", "-c", str(dovecot_conf)], check=True, timeout=30)
        _wait(lambda: (run / "auth-postfix").exists(), "no SASL socket from dovecot")
        # postfix(1) reports its errors only to a terminal: run it under script(1)
        started = subprocess.run(
            ["script", "-qec", " ".join([*postfix, "start"]), "/dev/null"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if started.returncode != 0:
            raise RuntimeError(f"postfix start: {started.stdout} {started.stderr}")
        _wait(
            lambda: _listening(port) and _listening(sport) and _listening(pport),
            "postfix does not listen",
        )
        yield Peer(
            f"127.0.0.1:{port}", f"127.0.0.1:{sport}", f"127.0.0.1:{pport}", cert, log / "maillog"
        )
    finally:
        subprocess.run([*postfix, "stop"], capture_output=True, timeout=60)
        stop_master(dovecot_pid)  # before removing its state_dir, which it writes on exit
        shutil.rmtree(folder, ignore_errors=True)
