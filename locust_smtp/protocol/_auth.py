"""SMTP AUTH (RFC 4954) mechanisms, without I/O: what to send for each server challenge.

A :class:`Mechanism` gives the ``AUTH`` command line, then, for each 334 challenge
(base64-decoded), the next response (sent base64-encoded on a line of its own).
PLAIN, XOAUTH2 and OAUTHBEARER send everything with the command (an "initial
response"); LOGIN answers two prompts; CRAM-MD5 answers the server's challenge with
an HMAC of it keyed by the password. XOAUTH2 and OAUTHBEARER answer an error
challenge (a JSON document) with an empty response (``\\x01`` for OAUTHBEARER), after
which the server sends its final refusal.

Secrets only ever leave here inside the bytes to send; nothing here logs or formats
them into an error text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

from ._errors import LocalProtocolError

MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER")


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


class Mechanism:
    """One authentication exchange: :meth:`command`, then :meth:`respond` per 334."""

    name = ""
    #: 334 challenges the mechanism answers; one more is a server that keeps challenging
    max_steps = 1

    def __init__(self, username: str, secret: str) -> None:
        for text in (username, secret):
            if "\r" in text or "\n" in text:
                raise LocalProtocolError("credentials contain CR or LF")
        self.username = username
        self.secret = secret
        self.steps = 0

    def command(self) -> bytes:
        """The ``AUTH`` line, with an initial response if the mechanism has one."""
        initial = self.initial()
        line = b"AUTH " + self.name.encode()
        return line + (b" " + b64(initial) if initial is not None else b"") + b"\r\n"

    def initial(self) -> bytes | None:
        return None

    def respond(self, challenge: bytes) -> bytes:
        """The line (base64, CRLF-terminated) answering a decoded 334 ``challenge``."""
        self.steps += 1
        if self.steps > self.max_steps:
            raise LocalProtocolError("the server keeps challenging")
        return b64(self.answer(challenge)) + b"\r\n"

    def answer(self, challenge: bytes) -> bytes:
        return b""


class Plain(Mechanism):
    name = "PLAIN"

    def initial(self) -> bytes:
        return b"\0" + self.username.encode() + b"\0" + self.secret.encode()


class Login(Mechanism):
    name = "LOGIN"
    max_steps = 2

    def answer(self, challenge: bytes) -> bytes:
        # "Username:" then "Password:" (some servers send other texts: go by the order)
        return (self.username if self.steps == 1 else self.secret).encode()


class CramMd5(Mechanism):
    name = "CRAM-MD5"

    def answer(self, challenge: bytes) -> bytes:
        digest = hmac.new(self.secret.encode(), challenge, hashlib.md5).hexdigest()
        return f"{self.username} {digest}".encode()


class XOAuth2(Mechanism):
    """Google's and Microsoft's OAuth 2.0 mechanism: ``secret`` is the access token."""

    name = "XOAUTH2"

    def initial(self) -> bytes:
        return f"user={self.username}\x01auth=Bearer {self.secret}\x01\x01".encode()


def saslname(name: str) -> str:
    """``name`` as the authzid of a GS2 header (RFC 5801 §4): ``,`` and ``=`` escaped."""
    return name.replace("=", "=3D").replace(",", "=2C")


class OAuthBearer(Mechanism):
    """RFC 7628: ``secret`` is the access token."""

    name = "OAUTHBEARER"

    def initial(self) -> bytes:
        user = saslname(self.username)
        return f"n,a={user},\x01auth=Bearer {self.secret}\x01\x01".encode()

    def answer(self, challenge: bytes) -> bytes:
        return b"\x01"  # RFC 7628 §3.2.3: acknowledge the error challenge


_BY_NAME: dict[str, Callable[[str, str], Mechanism]] = {
    "PLAIN": Plain,
    "LOGIN": Login,
    "CRAM-MD5": CramMd5,
    "XOAUTH2": XOAuth2,
    "OAUTHBEARER": OAuthBearer,
}


def offered(extensions: object, name: str) -> bool:
    """Whether an EHLO reply's extensions (``Extensions``) list AUTH with ``name``."""
    keywords = getattr(extensions, "keywords", {})
    return name.upper() in keywords.get("AUTH", "").upper().split()


def not_offered_text(name: str, encrypted: bool) -> str:
    why = "" if encrypted else " (many servers offer AUTH only after STARTTLS)"
    return f"AUTH {name.upper()} not offered by the server (not in its EHLO reply){why}"


def mechanism(name: str, username: str, secret: str) -> Mechanism:
    """The mechanism called ``name`` (any case); LocalProtocolError for an unknown one."""
    factory = _BY_NAME.get(name.upper())
    if factory is None:
        raise LocalProtocolError(
            f"unknown AUTH mechanism {name!r} (one of {', '.join(MECHANISMS)})"
        )
    return factory(username, secret)
