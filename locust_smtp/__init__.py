"""SMTP/LMTP load generation for Locust.

Three layers, each importing only the ones below it:

* :mod:`locust_smtp.protocol`: the protocol without I/O (replies, commands,
  content, addresses, stages, errors); imports neither gevent nor Locust;
* :class:`SmtpClient` (:mod:`locust_smtp.client`): a thin gevent loop around it;
* the Locust layer: :class:`SmtpUser` and :class:`LmtpUser`, which report every
  stage of every transaction, the ``--smtp-*`` options, the exact message pool,
  distributed runs and the web UI's SMTP tab.

Everything the protocol package exports is here too. The client and the users
are imported when first asked for (``from locust_smtp import SmtpUser``), so
that importing the protocol does not start Locust; importing the users
registers the ``--smtp-*`` options and the rest of the Locust plugin.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .protocol import *  # noqa: F403 (the protocol's whole public API)
from .protocol import __all__ as _protocol_all

if TYPE_CHECKING:
    from .client import MailResult, SmtpClient
    from .users import LmtpUser, SmtpUser

#: Names imported when first used, and the module each comes from.
_LAZY = {
    "MailResult": ".client",
    "SmtpClient": ".client",
    "LmtpUser": ".users",
    "SmtpUser": ".users",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'locust_smtp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [*_protocol_all, "LmtpUser", "MailResult", "SmtpClient", "SmtpUser"]
