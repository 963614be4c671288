"""The sink's TLS certificate: a given one, or a self-signed one made at start-up.

Made with `cryptography` (pyca), the library Python's own TLS tooling builds on and
that trustme, used by the tests, wraps: no ``openssl`` command to shell out to, and the
same code on every platform. The certificate is for the sink's hostname, ``localhost``,
127.0.0.1 and ::1, valid for a day, with an EC P-256 key; a client has to be told not
to verify it (``tls_verify = False``), or to trust the file written beside it
(``--tls-cert-out``).
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from pathlib import Path


def self_signed(hostname: str) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for ``hostname`` and the loopback names."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    names: list[x509.GeneralName] = [x509.DNSName(hostname), x509.DNSName("localhost")]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def server_context(
    cert_file: str | None, key_file: str | None, hostname: str, cert_out: Path | None = None
) -> ssl.SSLContext:
    """The sink's TLS context: ``cert_file`` (and ``key_file``), or a self-signed
    certificate (written to ``cert_out`` if given, for clients to trust)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
        return context
    cert, key = self_signed(hostname)
    if cert_out is not None:
        cert_out.write_bytes(cert)
    with tempfile.TemporaryDirectory() as folder:  # load_cert_chain reads files only
        cert_path, key_path = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        cert_path.write_bytes(cert)
        key_path.write_bytes(key)
        context.load_cert_chain(str(cert_path), str(key_path))
    return context
