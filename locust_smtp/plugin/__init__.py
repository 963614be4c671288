"""The Locust layer: users, options, the exact message pool, distributed runs, the web UI.

:class:`SmtpUser` and :class:`LmtpUser` (:mod:`.users`) drive an
:class:`~locust_smtp.client.SmtpClient` and report every stage as a Locust
request; :mod:`.options` adds the ``--smtp-*`` options, :mod:`.pool` and
:mod:`.distributed` hand out exact message counts (across workers too),
:mod:`.outcomes` counts what became of each message, :mod:`.webui` and
:mod:`.summary` show it.

Importing this package is what registers the plugin with Locust (its event
listeners: options, pool, distributed messages, web UI tab, outcome counters).
``from locust_smtp import SmtpUser`` imports it; importing
:mod:`locust_smtp.protocol` or :mod:`locust_smtp.client` does not.
"""

from __future__ import annotations

from . import options  # noqa: F401 (registers the listeners)
from .users import LmtpUser, SmtpUser, UserStopped

__all__ = ["LmtpUser", "SmtpUser", "UserStopped"]
