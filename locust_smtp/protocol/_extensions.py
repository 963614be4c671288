"""The service extensions a server lists in its EHLO or LHLO reply (RFC 5321 §4.1.1.1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ._replies import Reply


@dataclass(frozen=True)
class Extensions:
    """Keywords (upper-cased) and their parameters, from the lines after the first."""

    keywords: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_reply(cls, reply: Reply) -> Extensions:
        found: dict[str, str] = {}
        for line in reply.text.split("\n")[1:]:
            keyword, _, params = line.strip().partition(" ")
            if keyword:
                found[keyword.upper()] = params.strip()
        return cls(MappingProxyType(found))

    def __contains__(self, keyword: object) -> bool:
        return isinstance(keyword, str) and keyword.upper() in self.keywords

    @property
    def pipelining(self) -> bool:
        return "PIPELINING" in self.keywords

    @property
    def size(self) -> int | None:
        """The SIZE limit in bytes (0 = no fixed limit), or None if SIZE is not offered."""
        value = self.keywords.get("SIZE")
        if value is None:
            return None
        return int(value) if value.isdigit() else 0

    @property
    def eightbitmime(self) -> bool:
        return "8BITMIME" in self.keywords

    @property
    def starttls(self) -> bool:
        return "STARTTLS" in self.keywords

    @property
    def auth(self) -> tuple[str, ...]:
        """SASL mechanisms offered (``AUTH PLAIN LOGIN`` or the old ``AUTH=`` form)."""
        value = self.keywords.get("AUTH")
        if value is None:
            old = [k[5:] + " " + v for k, v in self.keywords.items() if k.startswith("AUTH=")]
            if not old:
                return ()
            value = old[0]
        return tuple(m.upper() for m in value.split())

    @property
    def chunking(self) -> bool:
        return "CHUNKING" in self.keywords

    @property
    def smtputf8(self) -> bool:
        return "SMTPUTF8" in self.keywords
