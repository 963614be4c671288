"""``locust-smtp``: smtp-source's command line, run as a headless Locust test.

:mod:`.options` parses smtp-source's flags and operand (its getopt rules and
error texts) into a :class:`~.options.SourceConfig`; :mod:`.session` is
smtp-source's session policy as a Locust user (the ``-A`` table, fatal texts,
``-c``, ``-N``, ``-w``/``-R``, ``--keep-going``) over the one transaction path
of :class:`~locust_smtp.client.SmtpClient`; :mod:`.cli` runs Locust and prints
the summary; :mod:`.locustfile` is the file it hands to Locust.
"""
