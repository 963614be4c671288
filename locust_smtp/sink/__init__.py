"""``locust-smtp-sink``: a gevent SMTP/LMTP server that accepts mail and throws it away.

    locust-smtp-sink [options] [[inet:]host:port | unix:path]     (default 127.0.0.1:2525)

The bundled target for locust-smtp: ESMTP with PIPELINING, 8BITMIME and
SIZE; LMTP (``-L``) with one end-of-data reply per accepted recipient; TCP
over IPv4/IPv6 or a UNIX socket. It counts connections, messages and
recipients and prints the counts at exit (and every ``--report-interval``
seconds). Faults in the spirit of Postfix's smtp-sink: ``-r CMD,..`` answers
those commands with 450, ``-f CMD,..`` with 550, ``-q CMD,..`` hangs up
without a reply, ``-Q CMD,..`` sends 421 and hangs up; ``--delay SECONDS``
waits before every reply. ``--record DIR`` writes each connection's client
bytes to ``DIR/NNNNNN.client`` (used by the differential tests).
``--starttls`` offers STARTTLS, ``--smtps`` speaks TLS from the first byte, with
``--tls-cert``/``--tls-key`` or a self-signed certificate made at start-up
(``--tls-cert-out`` writes it); the counts then add TLS sessions, resumed ones and
failed handshakes. ``--auth-file FILE`` offers AUTH PLAIN, LOGIN, CRAM-MD5, XOAUTH2 and
OAUTHBEARER against its ``user:password`` lines (the password is the OAuth token),
counting successes and failures.

Delivery tracking (:mod:`.delivery`, docs/delivery.md): every accepted message's header
section is read for the generator's ``X-Locust-Smtp-Trace`` field; per run the sink
counts unique messages, duplicates, gaps, late ones (``--late``), lost ones
(``--expect RUN=N``) and the delivery latency, prints a line per run before the count
line, and writes it all as JSON with ``--delivery-report FILE``.

Commands for the fault options: connect, helo, ehlo, lhlo, starttls, auth, mail, rcpt,
data, ``.`` (end of data), rset, noop, quit.
"""

from .cli import entry_point, main, parse_args
from .delivery import DeliveryTracker, parse_trace
from .server import Sink, listen
from .state import COMMANDS, PROGRAM, Counters, Session, SinkConfig

__all__ = [
    "COMMANDS",
    "PROGRAM",
    "Counters",
    "DeliveryTracker",
    "Session",
    "Sink",
    "SinkConfig",
    "entry_point",
    "listen",
    "main",
    "parse_args",
    "parse_trace",
]
