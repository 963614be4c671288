"""The locustfile ``locust-smtp`` hands to Locust: one user class, the smtp-source session.

Its settings come from the command line ``locust-smtp`` parsed in this process
(``--processes`` children inherit them when Locust forks).
"""

from locust_smtp.source.session import SourceUser


class SmtpSource(SourceUser):
    pass
