"""``python -m locust_smtp`` is ``locust-smtp``."""

from locust_smtp.cli import entry_point

entry_point()
