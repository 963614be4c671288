"""Plain SMTP load: each user sends smtp-source's message over and over.

    locust -f locustfiles/smtp_basic.py --host smtp://127.0.0.1:2525

Open http://localhost:8089, enter the number of users, start, and watch one
row per stage (connect, banner, HELO, MAIL, RCPT, DATA, end of data, QUIT)
plus one per message. Add ``--smtp-messages 10000`` to stop after exactly
that many messages, ``--smtp-reuse`` to keep connections open.
"""

from locust_smtp import SmtpUser


class MailSender(SmtpUser):
    sender = "loadtest@example.com"
    recipient = "sink@example.net"
    subject = "locust-smtp load test"
    reuse_connection = False
