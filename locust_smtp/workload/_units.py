"""Numbers as people write them on a command line: ``1000``, ``64K``, ``1.5M``.

Shared by the size distributions and by the template's ``{pad:SIZE}`` field, so
that a size means the same thing wherever it is written.
"""

from __future__ import annotations

import math
import re

#: The multipliers of the size suffixes (binary: 1K is 1024 bytes).
SIZE_SUFFIXES = {"": 1, "K": 1024, "M": 1024 * 1024}

_SIZE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([KkMm]?)")


def parse_count(text: str) -> int:
    """A whole number written in decimal digits (``"12"``), or ValueError.

    >>> parse_count(" 12 ")
    12
    """
    text = text.strip()
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"not a whole number: {text!r}")
    return int(text)


def parse_size(text: str) -> int:
    """A byte count with an optional ``K`` or ``M`` suffix (1K = 1024, 1M = 1048576),
    rounded to a whole byte; a fraction needs a suffix to make sense (``1.5K``).

    >>> parse_size("64K"), parse_size("1.5M"), parse_size("300")
    (65536, 1572864, 300)
    """
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a size (a number, optionally with a K or M suffix): {text!r}")
    number, suffix = match.groups()
    return round(float(number) * SIZE_SUFFIXES[suffix.upper()])


def parse_weight(text: str) -> float:
    """A positive, finite weight (``"67"``, ``"0.5"``), or ValueError."""
    try:
        weight = float(text)
    except ValueError:
        raise ValueError(f"weight is not a number: {text!r}") from None
    if not (math.isfinite(weight) and weight > 0):
        raise ValueError(f"weight must be a positive number: {text!r}")
    return weight


def format_size(size: int) -> str:
    """The shortest exact spelling of ``size`` that :func:`parse_size` reads back.

    >>> format_size(65536), format_size(3 * 1024 * 1024), format_size(1000)
    ('64K', '3M', '1000')
    """
    for suffix in ("M", "K"):
        unit = SIZE_SUFFIXES[suffix]
        if size and size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)
