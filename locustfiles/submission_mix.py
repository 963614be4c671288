"""A submission mix: authenticated clients sending mail of realistic sizes.

    locust -f locustfiles/submission_mix.py --host smtp://127.0.0.1:587 \
        --smtp-auth-credentials-file accounts.csv --headless -u 50 -t 5m

Each user is a mail client: STARTTLS, AUTH PLAIN as one account of the CSV file
(``username,password`` rows, one account per user), then a few messages per
connection. Sizes follow a log-normal law with a median of 24 KB and a long tail
(capped at 10 MB); recipients are mostly one, sometimes many. Try it on the
bundled sink: ``locust-smtp-sink --starttls --auth-file accounts.txt`` with
``alice:wonderland`` in accounts.txt and ``alice,wonderland`` in accounts.csv.
"""

from locust import between

from locust_smtp import SmtpUser


class MailClient(SmtpUser):
    starttls = "required"
    tls_verify = False  # a test server's self-signed certificate
    auth_mechanism = "PLAIN"
    sender = "user@example.com"
    recipient = "colleague@example.net"
    message_sizes = "lognormal:24K,1.3,10M"
    recipient_counts = "weights:1=80,2=12,5=6,20=2"
    recipient_domains = "example.net:60,gmail.com:25,outlook.com:15"
    messages_per_connection = "uniform:1-5"
    wait_time = between(0.5, 3)
