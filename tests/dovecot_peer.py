"""A private real Dovecot LMTP on loopback, delivering to maildirs in its own directory.

Nothing outside that directory is read or written: ``dovecot -c DIR/dovecot.conf`` with
its own ``base_dir``, ``state_dir``, log and mail. Only ``protocols = lmtp`` on
127.0.0.1:PORT, no TLS; LHLO offers PIPELINING, CHUNKING, 8BITMIME and
ENHANCEDSTATUSCODES. Every recipient is delivered to
``DIR/mail/<recipient, lowercased>/Maildir``, except those whose local part starts with
``reject`` (any case): the userdb does not know them, RCPT gets ``550 5.1.1``. After the
content, one reply per accepted recipient. Needs root (the master) and the Debian
packages dovecot-core and dovecot-lmtpd; the mail belongs to the user ``mail``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from servers import free_port

LMTP_BINARY = Path("/usr/lib/dovecot/lmtp")
MAIL_USER = "mail"
REJECT_PREFIX = "reject"


@dataclass
class LmtpPeer:
    lmtp: str
    """host:port of the LMTP service."""
    mail: Path
    """The maildirs' root: one ``<recipient>/Maildir`` each."""
    log: Path
    """Dovecot's log."""

    def messages(self, recipient: str) -> list[Path]:
        """The messages delivered to ``recipient`` so far (new and cur)."""
        maildir = self.mail / recipient.lower() / "Maildir"
        return sorted(p for d in ("new", "cur") for p in (maildir / d).glob("*") if p.is_file())

    def all_messages(self) -> list[Path]:
        """Every message delivered so far, to any recipient."""
        return sorted(p for p in self.mail.glob("*/Maildir/*/*") if p.parent.name in ("new", "cur"))


def available() -> str | None:
    """Why this peer cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (the Dovecot master runs as root)"
    if shutil.which("dovecot") is None and not Path("/usr/sbin/dovecot").exists():
        return "missing dovecot (Debian package dovecot-core)"
    if not LMTP_BINARY.exists():
        return f"missing {LMTP_BINARY} (Debian package dovecot-lmtpd)"
    try:
        pwd.getpwnam(MAIL_USER)
        pwd.getpwnam("dovecot")
        pwd.getpwnam("dovenull")
    except KeyError as exc:
        return f"missing user {exc} (Debian packages base-passwd and dovecot-core)"
    return None


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    """Running, not a zombie (PID 1 here may be slow to reap daemonised masters)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop_master(pid_file: Path, timeout: float = 10.0) -> None:
    """Stop the Dovecot master whose pid ``pid_file`` holds, and wait for its end (bounded):
    it writes into its state_dir as it goes."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


@contextlib.contextmanager
def dovecot_peer() -> Iterator[LmtpPeer]:
    user = pwd.getpwnam(MAIL_USER)
    uid, gid = user.pw_uid, user.pw_gid
    folder = Path(tempfile.mkdtemp(prefix="locust-smtp-dovecot-", dir="/tmp"))
    folder.chmod(0o755)  # dovecot and the mail user traverse it
    run, state, log, mail = (folder / d for d in ("run", "state", "log", "mail"))
    for d in (run, state, log, mail):
        d.mkdir()
    log.chmod(0o755)
    os.chown(mail, uid, gid)
    mail.chmod(0o750)
    port = free_port()
    # userdb: a passwd-file whose lookup key is computed from the recipient: local parts
    # starting with the reject prefix look up a key that is not there (user unknown,
    # 550 5.1.1 at RCPT), all others "__any__". uid, gid and home come per recipient
    # from override_fields.
    userdb = folder / "userdb"
    userdb.write_text(f"__any__::{uid}:{gid}::{mail}::\n")
    userdb.chmod(0o644)
    key = f"%{{if;%Ln;*;{REJECT_PREFIX}*;__no_such_user__;__any__}}"
    conf = folder / "dovecot.conf"
    conf.write_text(
        f"""instance_name = locust-smtp-lmtp-{port}
base_dir = {run}
state_dir = {state}
log_path = {log}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
hostname = dovecot-peer.localhost
first_valid_uid = 1
first_valid_gid = 1
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:~/Maildir
mail_fsync = never
lmtp_save_to_detail_mailbox = no
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = passwd-file
  args = username_format={key} {userdb}
  override_fields = uid={uid} gid={gid} home={mail}/%Lu
}}
service lmtp {{
  user = {MAIL_USER}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
service auth {{
  unix_listener auth-userdb {{
    mode = 0600
    user = {MAIL_USER}
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""
    )
    try:
        # the daemon keeps the descriptors it was given: a file, not a pipe, else
        # waiting for the output would wait for the daemon's end
        errors = log / "dovecot-start.err"
        with errors.open("wb") as err:
            code = subprocess.run(
                ["dovecot", "-c", str(conf)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err, timeout=30,
            ).returncode  # fmt: skip
        if code != 0:
            raise RuntimeError(f"dovecot lmtp peer: {errors.read_text().strip()}")
        deadline = time.monotonic() + 15
        while not _listening(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot lmtp peer: not listening on {port}, see {log}")
            time.sleep(0.05)
        yield LmtpPeer(f"127.0.0.1:{port}", mail, log / "dovecot.log")
    finally:
        stop_master(run / "master.pid")
        shutil.rmtree(folder, ignore_errors=True)
