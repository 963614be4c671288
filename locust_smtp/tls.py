"""TLS over the transport seam: STARTTLS and implicit TLS (SMTPS).

:class:`TlsTransport` has the methods of :class:`~locust_smtp.transport.SocketTransport`
and wraps one: the TLS library works on memory buffers (:class:`ssl.MemoryBIO`,
:class:`ssl.SSLObject`, no socket of its own), so the bytes still go through the
plain transport's libev waits, timers, write batches and ``readable_at`` stamps.
:func:`handshake` turns a plain transport into a TLS one, mid-connection after
STARTTLS's 220 or right after connecting for SMTPS; the client times it as the
stage ``TLS handshake`` and classifies its failures (:class:`TlsError`).
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

from .protocol import stages
from .protocol._errors import ConnectionLost, TlsError
from .transport import RECV_SIZE, SocketTransport, timed_out

_STAGE = stages.TLS


class TlsTransport:
    """A :class:`SocketTransport` with TLS in between; same methods."""

    def __init__(
        self,
        raw: SocketTransport,
        tls: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
    ) -> None:
        self.raw = raw
        self.tls = tls
        self._incoming = incoming
        self._outgoing = outgoing

    # what the client reads of a transport
    @property
    def sock(self) -> Any:
        return self.raw.sock

    @property
    def fileno(self) -> int:
        return self.raw.fileno

    @property
    def readable_at(self) -> float:
        return self.raw.readable_at

    @property
    def timer(self) -> Any:
        return self.raw.timer

    @timer.setter
    def timer(self, timer: Any) -> None:
        self.raw.timer = timer

    @property
    def session_reused(self) -> bool:
        return bool(self.tls.session_reused)

    @property
    def session(self) -> ssl.SSLSession | None:
        """The TLS session, to resume on the next connection (:func:`handshake`)."""
        return self.tls.session

    def send(self, data: bytes, stage: str) -> None:
        self.tls.write(data)
        self.raw.send(self._outgoing.read(), stage)

    def send_soon(self, data: bytes, stamp: list[float]) -> None:
        self.tls.write(data)  # encrypted now, in order; written with the turn's batch
        self.raw.send_soon(self._outgoing.read(), stamp)

    def read(self, fresh: bool = True) -> bytes | None:
        """Decrypted bytes, as :meth:`SocketTransport.read`: ``b""`` when the peer hung
        up (or broke the TLS stream), None when the timer ran out."""
        tls, incoming = self.tls, self._incoming
        while True:
            try:
                return tls.read(RECV_SIZE)  # b"" on the peer's close_notify
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                # TLS 1.3: a server refusing our certificate says so after the handshake
                if "CERTIFICATE" in str(getattr(exc, "reason", "")):
                    raise classify(exc) from None
                return b""
            except OSError:
                return b""
            received = self.raw.read(fresh)
            fresh = False
            if not received:  # None (timed out) or b"" (hung up)
                return received
            incoming.write(received)

    def close(self, abort: bool = True) -> None:
        self.raw.close(abort)


def handshake(
    raw: SocketTransport,
    context: ssl.SSLContext,
    server_hostname: str | None = None,
    *,
    server_side: bool = False,
    session: ssl.SSLSession | None = None,
) -> TlsTransport:
    """The TLS handshake over ``raw``, bounded by its timer; raises :class:`TlsError`,
    :class:`~locust_smtp.protocol.ConnectionLost` or
    :class:`~locust_smtp.protocol.SmtpTimeout` (stage ``TLS handshake``).
    ``session`` resumes an earlier connection's TLS session (client side)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(
        incoming,
        outgoing,
        server_side=server_side,
        server_hostname=None if server_side else server_hostname,
        session=session,
    )
    fresh = True
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            pending = outgoing.read()
            if pending:
                raw.send(pending, _STAGE)
            received = raw.read(fresh)
            fresh = False
            if received is None:
                raise timed_out(_STAGE) from None
            if not received:
                raise ConnectionLost(_STAGE, "lost connection in the TLS handshake") from None
            incoming.write(received)
        except ssl.SSLError as exc:
            raise classify(exc) from None
    pending = outgoing.read()
    if pending:  # the last flight (a TLS 1.3 client's Finished, a server's tickets)
        raw.send(pending, _STAGE)
    return TlsTransport(raw, tls, incoming, outgoing)


TLS_VERSIONS = {"TLSV1.2": ssl.TLSVersion.TLSv1_2, "TLSV1.3": ssl.TLSVersion.TLSv1_3}
TLS_VERSION_NAMES = ("TLSv1.2", "TLSv1.3")


def client_context(
    *,
    verify: bool = True,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    min_version: str | None = None,
    max_version: str | None = None,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """A client TLS context from the usual settings; raises ValueError with a short text
    naming the bad one (a missing file, an unknown version, a cipher string OpenSSL
    refuses)."""
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"tls CA file {ca_file}: {exc}") from None
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert_file:
        try:
            context.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"tls client certificate {cert_file}: {exc}") from None
    for what, name, bound in (
        ("minimum", min_version, "minimum_version"),
        ("maximum", max_version, "maximum_version"),
    ):
        if name:
            version = TLS_VERSIONS.get(name.replace(" ", "").upper())
            if version is None:
                known = ", ".join(TLS_VERSION_NAMES)
                raise ValueError(f"tls {what} version {name!r} (one of {known})")
            setattr(context, bound, version)
    if ciphers:
        try:
            context.set_ciphers(ciphers)
        except ssl.SSLError:
            raise ValueError(f"tls ciphers {ciphers!r}: no cipher matches") from None
    return context


def context_for(settings: object) -> ssl.SSLContext:
    """:func:`client_context` from an object's ``tls_*`` attributes (an ``SmtpUser``, the
    command's ``SourceConfig``: they share the names). Objects with the same settings
    share one context, made once per process: loading the system's CA certificates takes
    milliseconds, and a context is safe to share between connections."""
    return _shared_context(
        bool(getattr(settings, "tls_verify", True)),
        getattr(settings, "tls_ca_file", None),
        getattr(settings, "tls_cert_file", None),
        getattr(settings, "tls_key_file", None),
        getattr(settings, "tls_min_version", None),
        getattr(settings, "tls_max_version", None),
        getattr(settings, "tls_ciphers", None),
    )


@functools.lru_cache(maxsize=16)
def _shared_context(
    verify: bool,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    min_version: str | None,
    max_version: str | None,
    ciphers: str | None,
) -> ssl.SSLContext:
    return client_context(
        verify=verify,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        min_version=min_version,
        max_version=max_version,
        ciphers=ciphers,
    )


def classify(exc: ssl.SSLError) -> TlsError:
    """A :class:`TlsError` of the right kind, worded for a mail operator, naming the
    setting to change (as the ``SmtpUser`` attribute and the ``locust-smtp`` option)."""
    reason = str(getattr(exc, "reason", None) or type(exc).__name__)
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or reason
        return TlsError(
            _STAGE,
            f"TLS handshake failed: certificate not trusted: {detail} (give the server's CA: "
            "tls_ca_file, --tls-ca; or for a test server turn verification off: "
            "tls_verify = False, --tls-no-verify)",
            "certificate",
        )
    if "CERTIFICATE" in reason:  # the server's alert about our certificate, or its lack
        return TlsError(
            _STAGE,
            f"TLS handshake failed: {reason}: the server refused the client certificate, or "
            "wants one (tls_cert_file and tls_key_file, --tls-cert and --tls-key)",
            "certificate",
        )
    if any(word in reason for word in _VERSION_MISMATCH):
        return TlsError(
            _STAGE,
            f"TLS handshake failed: {reason}: no TLS version in common with the server "
            "(tls_min_version/tls_max_version, --tls-min-version/--tls-max-version)",
            "protocol",
        )
    if reason in _NOT_TLS or "VERSION" in reason or "HTTP_REQUEST" in reason:
        return TlsError(
            _STAGE,
            f"TLS handshake failed: {reason}: the server does not speak TLS on this port "
            "(a plaintext port: use STARTTLS instead of TLS from the first byte)",
            "protocol",
        )
    return TlsError(_STAGE, f"TLS handshake failed: {reason}", "handshake")


#: OpenSSL reasons meaning the two sides share no protocol version
_VERSION_MISMATCH = (
    "PROTOCOL_VERSION",
    "UNSUPPORTED_PROTOCOL",
    "NO_PROTOCOLS_AVAILABLE",
    "VERSION_TOO_LOW",
    "VERSION_TOO_HIGH",
)
#: OpenSSL reasons meaning the peer's bytes are not TLS at all
_NOT_TLS = (
    "WRONG_VERSION_NUMBER",
    "UNKNOWN_PROTOCOL",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
)
