"""Named SMTP reply codes (RFC 5321 §4.2.3, RFC 2033), for the library and for
locustfiles that check replies."""

from __future__ import annotations

SERVICE_READY = 220
CLOSING = 221
OK = 250
START_MAIL_INPUT = 354

SERVICE_NOT_AVAILABLE = 421
MAILBOX_BUSY = 450
LOCAL_ERROR = 451
INSUFFICIENT_STORAGE = 452

SYNTAX_ERROR = 500
ARGUMENT_SYNTAX_ERROR = 501
NOT_IMPLEMENTED = 502
BAD_SEQUENCE = 503
MAILBOX_UNAVAILABLE = 550
TRANSACTION_FAILED = 554
NO_SERVICE = 521

#: Replies after which smtp-source (and this client) drops the connection.
CLOSING_CODES = frozenset({SERVICE_NOT_AVAILABLE, NO_SERVICE})
