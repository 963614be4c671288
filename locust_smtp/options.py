"""SMTP settings as Locust options (``locust -f ... --smtp-messages 1000``).

Importing :mod:`locust_smtp` registers them, so they appear in ``locust --help``,
in the web UI's start form, and reach workers from the master. A value given
on the command line (or in the form) overrides the user class attribute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gevent
from locust import events

from .pool import MessagePool, get_pool, set_pool

if TYPE_CHECKING:
    from locust.argument_parser import LocustArgumentParser
    from locust.env import Environment

#: option dest -> SmtpUser attribute it sets
USER_ATTRIBUTES = {
    "smtp_sender": "sender",
    "smtp_recipient": "recipient",
    "smtp_recipients_per_message": "recipients_per_message",
    "smtp_message_size": "message_size",
    "smtp_subject": "subject",
    "smtp_helo_name": "helo_name",
    "smtp_hello_command": "hello_command",
    "smtp_timeout": "timeout",
}


def add_options(parser: LocustArgumentParser, **_kwargs: Any) -> None:
    group = parser  # Locust's own add_argument understands include_in_web_ui
    group.add_argument(
        "--smtp-messages",
        type=int,
        default=0,
        metavar="COUNT",
        include_in_web_ui=True,
        help="Send exactly this many messages in total, then stop (0: no limit)",
    )
    group.add_argument(
        "--smtp-sender",
        metavar="ADDRESS",
        include_in_web_ui=True,
        help="Envelope sender (default foo@ + HELO name)",
    )
    group.add_argument(
        "--smtp-recipient",
        metavar="ADDRESS",
        include_in_web_ui=True,
        help="Recipient (default foo@ + HELO name)",
    )
    group.add_argument(
        "--smtp-recipients-per-message",
        type=int,
        metavar="N",
        include_in_web_ui=True,
        help="RCPT commands per message",
    )
    group.add_argument(
        "--smtp-message-size",
        type=int,
        metavar="BYTES",
        include_in_web_ui=True,
        help="Body size (as smtp-source -l)",
    )
    group.add_argument("--smtp-subject", metavar="TEXT", help="Subject header")
    group.add_argument("--smtp-helo-name", metavar="NAME", help="HELO/EHLO/LHLO name")
    group.add_argument(
        "--smtp-hello-command",
        choices=["HELO", "EHLO", "LHLO"],
        help="Greeting command (default HELO, or LHLO for LMTP)",
    )
    group.add_argument(
        "--smtp-lmtp", action="store_true", default=False, include_in_web_ui=True, help="Speak LMTP"
    )
    group.add_argument(
        "--smtp-reuse",
        action="store_true",
        default=False,
        include_in_web_ui=True,
        help="Keep connections open between messages (smtp-source -d)",
    )
    group.add_argument(
        "--smtp-timeout",
        type=float,
        metavar="SECONDS",
        help="Timeout of every read and write (default 300)",
    )


def apply_options(user: Any, environment: Environment) -> None:
    """Copy the SMTP options given to ``environment`` onto a user instance."""
    options = environment.parsed_options
    if options is None:
        return
    for dest, attribute in USER_ATTRIBUTES.items():
        value = getattr(options, dest, None)
        if value is not None:
            setattr(user, attribute, value)
    if getattr(options, "smtp_lmtp", False):
        user.lmtp = True
    if getattr(options, "smtp_reuse", False):
        user.reuse_connection = True


def install_pool(environment: Environment, total: int) -> MessagePool:
    """Give ``environment`` a pool of ``total`` messages; when it is used up and every user
    has ended its session, the run stops (headless: Locust exits; web UI: the test stops
    and the UI keeps the final numbers)."""
    pool = MessagePool(total)
    set_pool(environment, pool)

    def stop_when_users_are_done() -> None:
        runner = environment.runner
        if runner is None:
            return
        runner.user_greenlets.join()
        if environment.parsed_options is not None and environment.parsed_options.headless:
            runner.quit()
        else:
            runner.stop()

    pool.on_exhausted(lambda: gevent.spawn(stop_when_users_are_done))
    return pool


def create_pool(environment: Environment, **_kwargs: Any) -> None:
    options = environment.parsed_options
    total = getattr(options, "smtp_messages", 0) if options is not None else 0
    if total and total > 0:
        install_pool(environment, total)
    elif get_pool(environment) is not None:
        set_pool(environment, None)


events.init_command_line_parser.add_listener(add_options)  # type: ignore[no-untyped-call]
events.test_start.add_listener(create_pool)  # type: ignore[no-untyped-call]
