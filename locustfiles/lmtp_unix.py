"""LMTP over a UNIX socket, as an MTA hands mail to Dovecot or Cyrus.

    locust-smtp-sink --lmtp unix:/tmp/lmtp.sock &      # or your LMTP server
    locust -f locustfiles/lmtp_unix.py --host lmtp+unix:/tmp/lmtp.sock

Every message goes to three recipients; the server answers the end of data
once per accepted recipient (RFC 2033), and each answer is its own
``end of data`` request in the statistics.
"""

from locust_smtp import LmtpUser


class Delivery(LmtpUser):
    recipient = "user@example.org"
    recipients_per_message = 3
    reuse_connection = True
