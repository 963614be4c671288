"""Which ESMTP extensions a transaction uses, decided from the EHLO/LHLO reply (no I/O).

:class:`MailOptions` holds what a user (or the command) asks for: PIPELINING (RFC
2920), CHUNKING/BDAT (RFC 3030), SIZE (RFC 1870), BODY=8BITMIME or BINARYMIME (RFC
6152, 3030), SMTPUTF8 (RFC 6531) and DSN (RFC 3461). :meth:`MailOptions.plan` turns it
and a server's :class:`~._extensions.Extensions` into a :class:`Plan`: the writer, whether
to pipeline and the MAIL and RCPT parameters, or raises :class:`~._errors.NotOffered`
when something asked for is not advertised (``force`` skips that check: for servers
that accept what they do not advertise).

Three-way settings: ``"off"``, ``"auto"`` (when offered), ``"on"`` (required: a failure
when not offered) and ``"force"`` (used whatever the server says).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import stages
from ._commands import xtext
from ._content import message_size, unstuffed
from ._errors import NotOffered
from ._extensions import Extensions
from ._writers import DATA_WRITER, BdatWriter, DataWriter

USE = ("off", "auto", "on", "force")
BODY_TYPES = ("7BIT", "8BITMIME", "BINARYMIME")
DSN_RET = ("FULL", "HDRS")
DSN_NOTIFY = ("NEVER", "SUCCESS", "FAILURE", "DELAY")


@dataclass(frozen=True)
class Plan:
    """How one transaction goes, given what the server offered."""

    writer: DataWriter | BdatWriter
    pipelining: bool
    mail_params: tuple[str, ...]
    """MAIL parameters besides SIZE (which depends on each message)."""
    size: bool
    """Add ``SIZE=`` the message's size to MAIL."""
    rcpt_params: Callable[[str], tuple[str, ...]] | None

    def mail_params_for(self, size: int) -> tuple[str, ...]:
        if self.size:
            return (f"SIZE={size}", *self.mail_params)
        return self.mail_params

    def prepare(self, payload: bytes) -> tuple[bytes, tuple[str, ...]]:
        """A DATA payload (dot-stuffed, ending with the ``.`` line) as this plan's writer
        sends it (unstuffed for BDAT), and the MAIL parameters, with SIZE when asked."""
        chunked = self.writer.chunked
        if chunked:
            payload = unstuffed(payload)
        if not self.size:
            return payload, self.mail_params
        return payload, self.mail_params_for(len(payload) if chunked else message_size(payload))


PLAIN_PLAN = Plan(DATA_WRITER, False, (), False, None)
"""No extension: what smtp-source does."""


@dataclass(frozen=True)
class MailOptions:
    pipelining: str = "off"
    chunking: str = "off"
    chunk_size: int = 0
    """Bytes per BDAT chunk; 0: one ``BDAT n LAST`` for the whole message."""
    size: str = "off"
    body: str | None = None
    smtputf8: str = "off"
    dsn_notify: str | None = None
    """``NEVER`` or a comma list of ``SUCCESS``, ``FAILURE``, ``DELAY``."""
    dsn_ret: str | None = None
    dsn_envid: str | None = None
    dsn_orcpt: bool = False

    @classmethod
    def from_settings(cls, settings: object) -> MailOptions:
        """From an object's attributes named as ``SmtpUser``'s (``pipelining``,
        ``chunking``, ``bdat_chunk_size``, ``mail_size``, ``body_type``, ``smtputf8``,
        ``dsn_*``): a user, or the command's ``SourceConfig``."""
        return cls(
            pipelining=getattr(settings, "pipelining", "off"),
            chunking=getattr(settings, "chunking", "off"),
            chunk_size=getattr(settings, "bdat_chunk_size", 0),
            size=getattr(settings, "mail_size", "off"),
            body=getattr(settings, "body_type", None),
            smtputf8=getattr(settings, "smtputf8", "off"),
            dsn_notify=getattr(settings, "dsn_notify", None),
            dsn_ret=getattr(settings, "dsn_ret", None),
            dsn_envid=getattr(settings, "dsn_envid", None),
            dsn_orcpt=bool(getattr(settings, "dsn_orcpt", False)),
        )

    def check(self) -> MailOptions:
        """Raise ValueError naming a bad setting; return the options, names upper-cased."""
        for name in ("pipelining", "chunking", "size", "smtputf8"):
            if getattr(self, name) not in USE:
                raise ValueError(f"{name}: {getattr(self, name)!r} (one of {', '.join(USE)})")
        if self.chunk_size < 0:
            raise ValueError(f"chunk size: {self.chunk_size}")
        body = self.body.upper() if self.body else None
        if body is not None and body not in BODY_TYPES:
            raise ValueError(f"body: {self.body!r} (one of {', '.join(BODY_TYPES)})")
        if body == "BINARYMIME" and self.chunking == "off":
            raise ValueError("body BINARYMIME needs CHUNKING (BDAT)")
        ret = self.dsn_ret.upper() if self.dsn_ret else None
        if ret is not None and ret not in DSN_RET:
            raise ValueError(f"DSN RET: {self.dsn_ret!r} (FULL or HDRS)")
        notify = self.dsn_notify.upper().replace(" ", "") if self.dsn_notify else None
        if notify is not None:
            words = notify.split(",")
            if any(w not in DSN_NOTIFY for w in words) or ("NEVER" in words and len(words) > 1):
                raise ValueError(
                    f"DSN NOTIFY: {self.dsn_notify!r} (NEVER, or SUCCESS, FAILURE, DELAY "
                    "separated by commas)"
                )
        if self.dsn_envid is not None and not self.dsn_envid:
            raise ValueError("DSN ENVID: empty")
        return MailOptions(
            self.pipelining,
            self.chunking,
            self.chunk_size,
            self.size,
            body,
            self.smtputf8,
            notify,
            ret,
            self.dsn_envid,
            self.dsn_orcpt,
        )

    @property
    def wants_ehlo(self) -> bool:
        """Something here needs the EHLO reply (HELO offers no extension); ``auto``
        settings do not: they apply when the greeting is EHLO anyway."""
        return (
            any(
                getattr(self, n) in ("on", "force")
                for n in ("pipelining", "chunking", "size", "smtputf8")
            )
            or self.body is not None
            or self.dsn
        )

    @property
    def dsn(self) -> bool:
        return bool(self.dsn_notify or self.dsn_ret or self.dsn_envid or self.dsn_orcpt)

    def plan(self, offered: Extensions) -> Plan:
        """The plan for a server that ``offered`` these extensions; raises
        :class:`NotOffered` when one asked for ``on`` (or a parameter) is missing."""
        pipelining = _use(self.pipelining, offered.pipelining, "PIPELINING")
        chunking = _use(self.chunking, offered.chunking, "CHUNKING")
        size = _use(self.size, offered.size is not None, "SIZE")
        params: list[str] = []
        if self.body is not None:
            keyword = {"8BITMIME": "8BITMIME", "BINARYMIME": "BINARYMIME"}.get(self.body)
            if keyword is not None:
                _require(keyword in offered, keyword)
            params.append(f"BODY={self.body}")
        if _use(self.smtputf8, offered.smtputf8, "SMTPUTF8"):
            params.append("SMTPUTF8")
        rcpt_params = None
        if self.dsn:
            _require("DSN" in offered, "DSN")
            if self.dsn_ret:
                params.append(f"RET={self.dsn_ret}")
            if self.dsn_envid:
                params.append(f"ENVID={xtext(self.dsn_envid)}")
            rcpt_params = _dsn_rcpt_params(self.dsn_notify, self.dsn_orcpt)
        if self.body == "BINARYMIME" and not chunking:
            _require(False, "CHUNKING")
        writer: DataWriter | BdatWriter = DATA_WRITER
        if chunking:
            writer = BdatWriter(self.chunk_size)
        return Plan(writer, pipelining, tuple(params), size, rcpt_params)


def _use(setting: str, offered: bool, keyword: str) -> bool:
    if setting == "off":
        return False
    if setting == "force" or offered:
        return True
    if setting == "on":
        _require(False, keyword)
    return False


def _require(offered: bool, keyword: str) -> None:
    if not offered:
        raise NotOffered(
            stages.MAIL,
            keyword,
            f"{keyword} not offered by the server (not in its EHLO reply; said HELO?)",
        )


def _dsn_rcpt_params(notify: str | None, orcpt: bool) -> Callable[[str], tuple[str, ...]] | None:
    if not notify and not orcpt:
        return None
    fixed = (f"NOTIFY={notify}",) if notify else ()
    if not orcpt:
        return lambda _recipient: fixed
    return lambda recipient: (*fixed, f"ORCPT=rfc822;{xtext(recipient)}")
