"""``python -m locust_smtp``: the same as ``locust-smtp``."""

from locust_smtp.source.launcher import entry_point

entry_point()
