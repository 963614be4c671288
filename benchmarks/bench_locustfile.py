"""The user the benchmark runs: smtp-source's message, settings from --smtp-* options."""

from locust_smtp import SmtpUser


class Bench(SmtpUser):
    pass
