"""An MX's inbound traffic at a fixed rate, from many client addresses.

    locust -f locustfiles/mx_inbound.py --host smtp://127.0.0.1:25 --headless -u 200 -t 10m

Mail arrives at 50 messages/s (Poisson) whatever the server's speed: the users are
the capacity (200 connections at most), and the ``message from schedule`` row
shows latency including any wait for a free connection. Each connection comes
from its own address of 198.18.0.0/15 (XCLIENT, which Postfix grants to
``smtpd_authorized_xclient_hosts``), recipients are spread over the domains the
MX serves, 5% of them do not exist (the server should refuse them with 550 5.1.1),
and sizes follow the corpus of real mail if ``SIZES_FROM`` names one. Change the
rate while it runs at http://localhost:8089/smtp/rate, or start with another one:
``--smtp-rate 10-200/5m,200`` (a ramp, then hold).
"""

import os

from locust import events

from locust_smtp import SmtpUser


@events.init.add_listener
def default_rate(environment, **_kwargs):
    options = environment.parsed_options
    if options is not None and not options.smtp_rate:
        options.smtp_rate = "50"
        options.smtp_arrivals = "poisson"


class Sender(SmtpUser):
    sender = "newsletter@sender.example"
    recipient_domains = "example.org:70,example.com:30"
    invalid_recipients = 0.05
    recipient_counts = "weights:1=90,3=10"
    message_sizes = (
        f"empirical:{os.environ['SIZES_FROM']}"
        if "SIZES_FROM" in os.environ
        else ("lognormal:16K,1.1,5M")
    )
    client_identity = "xclient"
    client_address_per = "connection"
    messages_per_connection = "uniform:1-10"
