"""aiosmtpd as a child process for the tests:
``aiosmtpd_server.py PORT LOG smtp|lmtp|starttls|smtps [CERT KEY]``.

``starttls`` offers STARTTLS and requires it before MAIL; ``smtps`` speaks TLS from the
first byte. Both use the certificate chain CERT and its key KEY.

Each received message is appended to LOG as one line: sender, recipients and the
size of the content, so a test can count what the server really got.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP


class Recorder:
    def __init__(self, log: str) -> None:
        self.log = log

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        with open(self.log, "a") as f:
            f.write(
                json.dumps(
                    {
                        "from": envelope.mail_from,  # type: ignore[attr-defined]
                        "to": envelope.rcpt_tos,  # type: ignore[attr-defined]
                        "size": len(envelope.content),  # type: ignore[attr-defined]
                    }
                )
                + "\n"
            )
        return "250 2.0.0 Ok: queued"


class LmtpController(Controller):
    def factory(self) -> LMTP:
        return LMTP(self.handler)


def main() -> None:
    port, log, proto = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    cls = LmtpController if proto == "lmtp" else Controller
    kwargs: dict[str, object] = {}
    if proto in ("starttls", "smtps"):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[4], sys.argv[5])
        if proto == "starttls":
            kwargs = {"tls_context": context, "require_starttls": True}
        else:
            kwargs = {"ssl_context": context}
    controller = cls(Recorder(log), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
