"""``python -m locust_smtp.sink``: the same as ``locust-smtp-sink``."""

from .cli import entry_point

entry_point()
