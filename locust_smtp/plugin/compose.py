"""Real traffic for the users: each message's envelope and content drawn from a workload.

A :class:`Composer` is built from the workload settings a user class (or the
command's configuration) carries, all of them off by default, and makes each
message's sender, recipients and content (:meth:`Composer.compose`):

* content: a corpus message (``corpus``: ``PATH[=WEIGHT],...``, Maildirs, ``.eml``
  trees, mboxes, files; :func:`~locust_smtp.workload.parse_mix`) with its From, To,
  Message-Id and Date rewritten to the transaction's (``rewrite_headers``), or a
  ``message_template`` file with per-message fields, else the user's usual message;
  then padded to a size drawn from ``message_sizes`` (a distribution:
  ``lognormal:64K,1.2``; it only ever adds, so a larger message keeps its size) and
  given ``attachments`` of the listed sizes (``100K,2M``);
* recipients: ``recipient_counts`` (a distribution) of them per message, from a
  ``recipient_domains`` mix (``gmail.com:67,outlook.com:20,example.net:13``) with
  ``invalid_recipients`` (a share, 0 to 1) meant to be refused, or from a
  ``recipient_file`` (CSV; see :func:`~locust_smtp.workload.read_address_pool`);
* sender: from a ``sender_file``, else the user's sender;
* ``unique_addresses``: each worker takes its own slice of the address files, so
  that no address is used by two workers;
* ``workload_seed``: the draws of user N are seeded with ``seed + N``, so that a run
  can be repeated (default: random).

Template fields: ``{seq}`` (the message's number in the run), ``{run_id}``,
``{sender}``, ``{recipient}`` (the first), ``{recipients}`` (all, comma-separated),
``{message_id}``, ``{date}``, ``{words:N}`` and ``{pad:SIZE}``
(:class:`~locust_smtp.workload.Template`).

Corpora and address files are read once per process and shared by its users; a
corpus is indexed, not loaded: each message is read from disk when it is sent.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..protocol._content import rfc2822_date
from ..workload import (
    DomainMix,
    MessageMix,
    RecipientGenerator,
    Template,
    pad_to_size,
    parse_distribution,
    parse_mix,
    read_address_pool,
    rewrite_headers,
    to_crlf,
    unique_slice,
    with_attachments,
)
from ..workload._units import parse_size
from ..workload.distributions import Distribution

#: the settings a Composer reads (SmtpUser attributes, SourceConfig fields)
SETTINGS = (
    "corpus",
    "rewrite_headers",
    "message_template",
    "message_sizes",
    "attachments",
    "recipient_counts",
    "recipient_domains",
    "invalid_recipients",
    "recipient_file",
    "sender_file",
    "unique_addresses",
    "workload_seed",
    "messages_per_connection",
)

_shared: dict[tuple[str, object], object] = {}
"""Corpora, templates and address files already read in this process."""


def _once(kind: str, key: object, make: Any) -> Any:
    found = _shared.get((kind, key))
    if found is None:
        found = _shared[(kind, key)] = make()
    return found


@dataclass
class Message:
    """One message as composed: the envelope and the content (not yet dot-stuffed)."""

    sender: str
    recipients: list[str]
    content: bytes


class Composer:
    """Draws each message of one user (see the module's documentation)."""

    def __init__(
        self, settings: Any, *, user_number: int, worker: int = 0, workers: int = 1
    ) -> None:
        """``settings``: an object with the :data:`SETTINGS` attributes. Raises
        ValueError naming a bad setting."""
        self.corpus: MessageMix | None = None
        if settings.corpus:
            self.corpus = _once("corpus", settings.corpus, lambda: parse_mix(settings.corpus))
        self.rewrite = bool(settings.rewrite_headers)
        self.template: Template | None = None
        if settings.message_template:
            self.template = _once(
                "template", settings.message_template, lambda: _read_template(settings)
            )
        self.sizes: Distribution | None = None
        if settings.message_sizes:
            self.sizes = parse_distribution(str(settings.message_sizes), sizes=True)
        self.attachments: list[int] = []
        if settings.attachments:
            self.attachments = [parse_size(s.strip()) for s in str(settings.attachments).split(",")]
        self.counts: Distribution | None = None
        if settings.recipient_counts:
            self.counts = parse_distribution(str(settings.recipient_counts))
        self.generator: RecipientGenerator | None = None
        invalid = float(settings.invalid_recipients or 0.0)
        if not 0.0 <= invalid <= 1.0:
            raise ValueError(f"bad invalid recipients share: {invalid} (0 to 1)")
        local_parts: Sequence[str] | None = None
        self.recipient_pool: Sequence[str] = ()
        if settings.recipient_file:
            self.recipient_pool = self._pool(settings.recipient_file, settings, worker, workers)
        if settings.recipient_domains:
            if self.recipient_pool:
                local_parts = [a.rpartition("@")[0] or a for a in self.recipient_pool]
            self.generator = RecipientGenerator(
                DomainMix.parse(str(settings.recipient_domains)),
                local_parts=local_parts,
                invalid_share=invalid,
            )
        elif invalid:
            raise ValueError("invalid recipients need recipient domains to be drawn from")
        self.sender_pool: Sequence[str] = ()
        if settings.sender_file:
            self.sender_pool = self._pool(settings.sender_file, settings, worker, workers)
        seed = settings.workload_seed
        self.rng = random.Random(None if seed is None else int(seed) + user_number)

    @staticmethod
    def _pool(path: str, settings: Any, worker: int, workers: int) -> Sequence[str]:
        addresses: list[str] = _once("addresses", path, lambda: read_address_pool(path))
        if settings.unique_addresses and workers > 1:
            sliced = unique_slice(addresses, worker, workers)
            if not sliced:
                raise ValueError(f"address file {path!r}: too few addresses for {workers} workers")
            return sliced
        return addresses

    @property
    def drawn_recipients(self) -> bool:
        return bool(self.counts or self.generator or self.recipient_pool)

    def recipients(self, default: list[str]) -> list[str]:
        """The next message's recipients (``default``: the user's usual ones)."""
        rng = self.rng
        if self.counts is None and self.generator is None and not self.recipient_pool:
            return default
        count = self.counts.sample(rng) if self.counts is not None else len(default)
        if self.generator is not None:
            return [self.generator.pick(rng)[0] for _ in range(count)]
        if self.recipient_pool:
            pool = self.recipient_pool
            if count <= len(pool):
                return rng.sample(list(pool), count) if count > 1 else [rng.choice(pool)]
            return [rng.choice(pool) for _ in range(count)]
        return (default * (count // len(default) + 1))[:count]

    def compose(
        self,
        *,
        sender: str,
        recipients: list[str],
        content: bytes | None,
        message_id: str,
        fields: dict[str, object],
        headers: bool = True,
    ) -> Message:
        """The next message: ``sender``, ``recipients`` and ``content`` are the user's
        usual ones (content None: made only if needed; ``headers``: it has a header
        section, whose From and To then name a drawn sender and recipients),
        ``message_id`` its Message-Id value (with ``<>``), ``fields`` extra template
        fields (``seq``, ``run_id``)."""
        rng = self.rng
        drawn = bool(self.sender_pool) or self.drawn_recipients
        if self.sender_pool:
            sender = rng.choice(self.sender_pool)
        recipients = self.recipients(recipients)
        date = rfc2822_date()
        if self.corpus is not None:
            source, i = self.corpus.pick(rng)
            content = source.message(i)
            if self.rewrite:
                content = rewrite_headers(
                    content,
                    sender=f"<{sender}>",
                    recipients=[f"<{r}>" for r in recipients],
                    message_id=message_id,
                    date=date,
                )
        elif self.template is not None:
            values = {
                "sender": sender,
                "recipient": recipients[0],
                "recipients": ", ".join(recipients),
                "message_id": message_id,
                "date": date,
                **fields,
            }
            content = to_crlf(self.template.render(values, rng).encode("utf-8"))
        elif drawn and headers and self.rewrite and content is not None:
            # the user's usual message, addressed as drawn
            content = rewrite_headers(
                content, sender=f"<{sender}>", recipients=[f"<{r}>" for r in recipients]
            )
        assert content is not None
        if self.sizes is not None:
            content = pad_to_size(content, self.sizes.sample(rng), rng)
        if self.attachments:
            content = with_attachments(content, self.attachments, rng)
        return Message(sender, recipients, content)


def _read_template(settings: Any) -> Template:
    path = str(settings.message_template)
    try:
        with open(path, encoding="utf-8") as f:
            return Template(f.read())
    except OSError as exc:
        raise ValueError(f"message template {path!r}: {os.strerror(exc.errno or 0)}") from None


_DRAWN = (
    "corpus",
    "message_template",
    "message_sizes",
    "attachments",
    "recipient_counts",
    "recipient_domains",
    "recipient_file",
    "sender_file",
    "invalid_recipients",
)


def wants_composer(settings: Any) -> bool:
    """Whether any setting draws something per message (else the users' fast path, one
    message rendered from a template, stays)."""
    return any(getattr(settings, name, None) for name in _DRAWN)


class ConnectionQuota:
    """``messages_per_connection``: how many messages a connection carries before its
    session ends (QUIT) and the next message opens another, drawn anew for each
    connection from a distribution (``uniform:1-20``)."""

    def __init__(self, spec: str, rng: random.Random) -> None:
        self.distribution = parse_distribution(str(spec))
        self.rng = rng
        self.left = 0

    def sent_one(self) -> bool:
        """A message went on this connection: True when the connection has had its
        share (the caller ends the session)."""
        if self.left <= 0:
            self.left = self.distribution.sample(self.rng)
        self.left -= 1
        return self.left <= 0

    def connection_ended(self) -> None:
        self.left = 0
