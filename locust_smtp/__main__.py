"""``python -m locust_smtp``: the same as ``locust-smtp``."""

from locust_smtp.source.cli import entry_point

entry_point()
