"""The package's layers: the protocol imports neither gevent nor Locust; the rest of the
public API is still where the docs show it."""

from __future__ import annotations

import subprocess
import sys


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_the_protocol_imports_neither_gevent_nor_locust() -> None:
    proc = python(
        "import sys, locust_smtp.protocol, locust_smtp\n"
        "print(sorted(m for m in ('gevent', 'locust') if m in sys.modules))"
    )
    assert (proc.returncode, proc.stdout) == (0, "[]\n"), proc.stderr


def test_the_users_and_the_client_come_when_asked_for() -> None:
    proc = python(
        "import sys\n"
        "from locust_smtp import SmtpUser, LmtpUser, SmtpClient, MailResult, Reply, stages\n"
        "from locust_smtp.options import USER_ATTRIBUTES\n"
        "print(SmtpUser.__module__, SmtpClient.__module__, 'locust' in sys.modules)"
    )
    assert proc.stdout == "locust_smtp.users locust_smtp.client True\n", proc.stderr
    proc = python("import locust_smtp; locust_smtp.NoSuchThing")
    assert "module 'locust_smtp' has no attribute 'NoSuchThing'" in proc.stderr
