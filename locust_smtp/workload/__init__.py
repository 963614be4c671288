"""Workloads: what to send, how big, to whom. A library without I/O beyond reading the
files it is given: no gevent, no Locust, no network.

* :mod:`.corpus`: message sources on disk (Maildir, ``.eml`` trees, mbox, one
  file), indexed once and read one message at a time; a weighted mix of them;
  header rewriting, templates, padding to a size, attachments;
* :mod:`.distributions`: size and count distributions from short specs
  (``lognormal:64K,1.2``), weighted recipient domains, recipient generation
  with a share of invalid addresses, address pools from CSV and their split
  between workers.
"""

from __future__ import annotations

from .corpus import (
    FileSource,
    MboxSource,
    MessageMix,
    MessageSource,
    Template,
    open_source,
    pad_to_size,
    parse_mix,
    render_template,
    rewrite_headers,
    to_crlf,
    with_attachments,
)
from .distributions import (
    Distribution,
    DomainMix,
    Empirical,
    Fixed,
    LogNormal,
    RecipientGenerator,
    Uniform,
    Weighted,
    parse_distribution,
    read_address_pool,
    unique_slice,
)

__all__ = [
    "Distribution",
    "DomainMix",
    "Empirical",
    "FileSource",
    "Fixed",
    "LogNormal",
    "MboxSource",
    "MessageMix",
    "MessageSource",
    "RecipientGenerator",
    "Template",
    "Uniform",
    "Weighted",
    "open_source",
    "pad_to_size",
    "parse_distribution",
    "parse_mix",
    "read_address_pool",
    "render_template",
    "rewrite_headers",
    "to_crlf",
    "unique_slice",
    "with_attachments",
]
