"""smtp-source's envelope rules: default identity and recipient numbering (3.7 semantics)."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator


def default_address(myhostname: str) -> str:
    """``foo@`` + the hostname, smtp-source's default sender and recipient."""
    return f"foo@{myhostname}"


def local_hostname() -> str:
    """The machine's hostname as ``gethostname()`` gives it (no DNS, no domain appended)."""
    return socket.gethostname()


class RecipientNumbers:
    """smtp-source's ``-N``: one counter shared by every session of the process, starting
    at 1 (or ``start``) and advanced for every RCPT sent."""

    def __init__(self, start: int = 1) -> None:
        self._counter: Iterator[int] = itertools.count(start)

    def next(self) -> int:
        return next(self._counter)


def numbered_recipient(recipient: str, left: int, numbers: RecipientNumbers | None) -> str:
    """One RCPT address: ``left`` counts down to 1 over a transaction (see below)."""
    if numbers is not None:
        return f"{numbers.next()}{recipient}"
    return f"{left}{recipient}" if left > 1 else recipient


def source_recipients(
    recipient: str, count: int, numbers: RecipientNumbers | None = None
) -> list[str]:
    """The RCPT addresses of one transaction, as smtp-source 3.7 makes them.

    Without ``numbers`` (no ``-N``): the k-th of ``count`` recipients gets the number
    ``count - k + 1`` prepended, except the last one, which is sent unchanged
    (``-r 3``: ``3foo@vm``, ``2foo@vm``, ``foo@vm``). With ``numbers`` every recipient
    gets the next global number prepended.
    """
    return [numbered_recipient(recipient, left, numbers) for left in range(count, 0, -1)]
