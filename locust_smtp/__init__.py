"""SMTP/LMTP load generation for Locust.

Layers, each importing only the ones below it (docs/architecture.md):

* :mod:`locust_smtp.protocol`: the protocol without I/O (the session machine,
  replies, commands, content, addresses, stages, errors); imports neither
  gevent nor Locust;
* :class:`SmtpClient` (:mod:`locust_smtp.client`) over a transport
  (:mod:`locust_smtp.transport`): a thin gevent loop around the machine;
* :mod:`locust_smtp.plugin`, the Locust layer: :class:`SmtpUser` and
  :class:`LmtpUser`, which report every stage of every transaction, the
  ``--smtp-*`` options, the exact message pool, distributed runs and the web
  UI's SMTP tab;
* the commands: :mod:`locust_smtp.source` (``locust-smtp``) and
  :mod:`locust_smtp.sink` (``locust-smtp-sink``).

Everything the protocol package exports is here too. The client and the users
are imported when first asked for (``from locust_smtp import SmtpUser``), so
that importing the protocol does not start Locust; importing the users imports
:mod:`locust_smtp.plugin`, which registers the ``--smtp-*`` options and the
rest of the Locust plugin.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .protocol import *  # noqa: F403 (the protocol's whole public API)
from .protocol import __all__ as _protocol_all

if TYPE_CHECKING:
    from .client import MailResult, SmtpClient
    from .plugin.users import LmtpUser, SmtpUser

#: Names imported when first used, and the module each comes from.
_LAZY = {
    "MailResult": ".client",
    "SmtpClient": ".client",
    "LmtpUser": ".plugin",
    "SmtpUser": ".plugin",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'locust_smtp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [*_protocol_all, "LmtpUser", "MailResult", "SmtpClient", "SmtpUser"]
