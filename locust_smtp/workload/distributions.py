"""How many, how big, to whom: random choices of a workload, from command-line specs.

A :class:`Distribution` draws whole numbers (message sizes, recipients per
message, messages per connection) and is written as a short spec:
``parse_distribution("lognormal:64K,1.2", sizes=True)``. :class:`DomainMix`
and :class:`RecipientGenerator` draw recipient addresses over weighted
domains, some of them meant to be refused; :func:`read_address_pool` reads
real addresses from a CSV file and :func:`unique_slice` gives each worker its
own share of them.

All randomness comes from the caller's :class:`random.Random`, so a seed
reproduces a run; nothing here does I/O except reading the files named.
"""

from __future__ import annotations

import bisect
import csv
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from ._units import format_size, parse_count, parse_size, parse_weight

if TYPE_CHECKING:
    import random

__all__ = [
    "Distribution",
    "DomainMix",
    "Empirical",
    "Fixed",
    "LogNormal",
    "RecipientGenerator",
    "Uniform",
    "Weighted",
    "parse_distribution",
    "read_address_pool",
    "unique_slice",
]

T = TypeVar("T")


class Distribution(ABC):
    """Whole numbers of at least 1, drawn at random.

    :meth:`describe` gives the distribution back as a spec that
    :func:`parse_distribution` reads (sizes with ``K``/``M`` where exact).
    """

    sizes: bool = False
    """Whether the numbers are byte sizes (written with K/M suffixes where exact)."""

    @abstractmethod
    def sample(self, rng: random.Random) -> int:
        """One number, drawn with ``rng``."""

    @abstractmethod
    def describe(self) -> str:
        """The distribution as a spec, e.g. ``uniform:1K-64K``."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    def _format(self, value: float) -> str:
        if self.sizes and value == int(value):
            return format_size(int(value))
        return f"{value:g}"


class Fixed(Distribution):
    """Always ``value``."""

    def __init__(self, value: int, *, sizes: bool = False) -> None:
        _at_least_one("value", value)
        self.value = value
        self.sizes = sizes

    def sample(self, rng: random.Random) -> int:
        return self.value

    def describe(self) -> str:
        return f"fixed:{self._format(self.value)}"


class Uniform(Distribution):
    """Any whole number from ``low`` to ``high``, both included, equally likely."""

    def __init__(self, low: int, high: int, *, sizes: bool = False) -> None:
        _at_least_one("low bound", low)
        if high < low:
            raise ValueError(f"high bound {high} is below low bound {low}")
        self.low = low
        self.high = high
        self.sizes = sizes

    def sample(self, rng: random.Random) -> int:
        return rng.randint(self.low, self.high)

    def describe(self) -> str:
        return f"uniform:{self._format(self.low)}-{self._format(self.high)}"


class LogNormal(Distribution):
    """``median * exp(sigma * Z)`` for a standard normal Z, rounded, at least 1 and at
    most ``maximum`` (when given).

    Half the draws are at most the median; ``sigma`` is that of the underlying
    normal (0 gives the median every time, 1 spreads the middle two thirds over
    about median/2.7 to median*2.7). Message sizes seen in real mail are roughly
    log-normal; the maximum cuts off the rare giant the long tail would give.
    """

    def __init__(
        self, median: float, sigma: float, maximum: int | None = None, *, sizes: bool = False
    ) -> None:
        if not (math.isfinite(median) and median > 0):
            raise ValueError(f"median must be a positive number: {median!r}")
        if not (math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"sigma must be a number of at least 0: {sigma!r}")
        if maximum is not None:
            _at_least_one("maximum", maximum)
        self.median = median
        self.sigma = sigma
        self.maximum = maximum
        self.sizes = sizes
        self._mu = math.log(median)

    def sample(self, rng: random.Random) -> int:
        value = max(1, round(rng.lognormvariate(self._mu, self.sigma)))
        return value if self.maximum is None else min(value, self.maximum)

    def describe(self) -> str:
        spec = f"lognormal:{self._format(self.median)},{self.sigma:g}"
        return spec if self.maximum is None else f"{spec},{self._format(self.maximum)}"


class Weighted(Distribution):
    """One of given values, each in proportion to its weight."""

    def __init__(self, choices: Iterable[tuple[int, float]], *, sizes: bool = False) -> None:
        self.choices = list(choices)
        """(value, weight) in the order given."""
        if not self.choices:
            raise ValueError("no values")
        self._values: list[int] = []
        self._cumulative: list[float] = []
        total = 0.0
        for value, weight in self.choices:
            _at_least_one("value", value)
            parse_weight(str(weight))
            total += weight
            self._values.append(value)
            self._cumulative.append(total)
        self.sizes = sizes

    def sample(self, rng: random.Random) -> int:
        at = rng.random() * self._cumulative[-1]
        return self._values[min(bisect.bisect_right(self._cumulative, at), len(self._values) - 1)]

    def describe(self) -> str:
        return "weights:" + ",".join(f"{self._format(v)}={w:g}" for v, w in self.choices)


class Empirical(Distribution):
    """One of a list of observed values, each equally likely: the sizes of a corpus."""

    def __init__(self, values: Sequence[int], *, origin: str = "", sizes: bool = True) -> None:
        if not values:
            raise ValueError("no values")
        for value in values:
            _at_least_one("value", value)
        self.values = list(values)
        self.origin = origin
        """The corpus path the values come from (for :meth:`describe`)."""
        self.sizes = sizes

    def sample(self, rng: random.Random) -> int:
        return self.values[rng.randrange(len(self.values))]

    def describe(self) -> str:
        return f"empirical:{self.origin}"


def _at_least_one(what: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{what} must be at least 1: {value}")


_FORMS = "N, fixed:N, uniform:A-B, lognormal:MEDIAN,SIGMA[,MAX], weights:V=W[,V=W...]"
_SIZE_FORMS = _FORMS + ", empirical:PATH; sizes take a K or M suffix (1K = 1024)"


def parse_distribution(spec: str, *, sizes: bool = False) -> Distribution:
    """A :class:`Distribution` from its spec; ValueError naming the spec if it is bad.

    * ``N`` or ``fixed:N``: always N;
    * ``uniform:A-B``: A to B, both included;
    * ``lognormal:MEDIAN,SIGMA[,MAX]``: see :class:`LogNormal`;
    * ``weights:V1=W1,V2=W2,...``: V1 in proportion W1, and so on;
    * ``empirical:PATH`` (sizes only): the sizes of the messages at PATH (any
      source :func:`~.corpus.open_source` reads), equally likely.

    With ``sizes=True`` the numbers take ``K`` and ``M`` suffixes (1K = 1024,
    1M = 1048576). Every number drawn is at least 1.

    >>> parse_distribution("uniform:1K-64K", sizes=True).describe()
    'uniform:1K-64K'
    >>> parse_distribution("3").describe()
    'fixed:3'
    """
    kind, colon, argument = spec.strip().partition(":")
    if not colon:
        kind, argument = "fixed", spec
    kind = kind.strip().lower()

    def number(text: str) -> int:
        return parse_size(text) if sizes else parse_count(text)

    def real(text: str) -> float:
        if sizes:
            return parse_size(text)
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"not a number: {text!r}") from None

    try:
        if kind == "fixed":
            return Fixed(number(argument), sizes=sizes)
        if kind == "uniform":
            low, dash, high = argument.partition("-")
            if not dash:
                raise ValueError("expected A-B")
            return Uniform(number(low), number(high), sizes=sizes)
        if kind == "lognormal":
            parts = argument.split(",")
            if len(parts) not in (2, 3):
                raise ValueError("expected MEDIAN,SIGMA or MEDIAN,SIGMA,MAX")
            maximum = number(parts[2]) if len(parts) == 3 else None
            return LogNormal(real(parts[0]), _sigma(parts[1]), maximum, sizes=sizes)
        if kind == "weights":
            choices = []
            for item in argument.split(","):
                value, equals, weight = item.partition("=")
                if not equals:
                    raise ValueError(f"expected VALUE=WEIGHT: {item!r}")
                choices.append((number(value), parse_weight(weight)))
            return Weighted(choices, sizes=sizes)
        if kind == "empirical":
            if not sizes:
                raise ValueError("empirical:PATH is for sizes only")
            from .corpus import open_source

            path = argument.strip()
            return Empirical(open_source(path).sizes(), origin=path, sizes=True)
        raise ValueError(f"unknown kind {kind!r}")
    except ValueError as e:
        what = "size distribution" if sizes else "distribution"
        forms = _SIZE_FORMS if sizes else _FORMS
        raise ValueError(f"bad {what} {spec!r}: {e} (accepted forms: {forms})") from None


def _sigma(text: str) -> float:
    """A log-normal sigma: a plain number (no size suffix), or ValueError."""
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"sigma is not a number: {text!r}") from None


# --------------------------------------------------------------------------- recipients


class DomainMix:
    """Domains chosen in proportion to their weights.

    >>> mix = DomainMix.parse("gmail.com:3,example.net")
    >>> mix.shares()
    {'gmail.com': 0.75, 'example.net': 0.25}
    """

    def __init__(self, domains: Iterable[tuple[str, float]]) -> None:
        self.domains: list[tuple[str, float]] = []
        """(domain, weight) in the order given."""
        self._cumulative: list[float] = []
        total = 0.0
        for domain, weight in domains:
            if not domain or any(c.isspace() or c in "@," for c in domain):
                raise ValueError(f"not a domain: {domain!r}")
            parse_weight(str(weight))
            total += weight
            self.domains.append((domain, weight))
            self._cumulative.append(total)
        if not self.domains:
            raise ValueError("a domain mix needs at least one domain")

    @classmethod
    def parse(cls, spec: str) -> DomainMix:
        """From ``DOMAIN[:WEIGHT][,DOMAIN[:WEIGHT]...]``; a domain without a weight has 1.

        A domain literal may carry colons of its own (``[IPv6:2001:db8::1]``): a
        weight after it is what follows ``]:``.
        """
        domains = []
        for item in spec.split(","):
            domain, colon, weight = item.strip().rpartition(":")
            if not colon or "]" in weight:
                domain, weight = item.strip(), "1"
            try:
                domains.append((domain, parse_weight(weight)))
            except ValueError as e:
                raise ValueError(
                    f"bad domain mix {spec!r}: {e} (expected DOMAIN[:WEIGHT][,DOMAIN[:WEIGHT]...])"
                ) from None
        try:
            return cls(domains)
        except ValueError as e:
            raise ValueError(f"bad domain mix {spec!r}: {e}") from None

    def pick(self, rng: random.Random) -> str:
        """One domain, by weight."""
        at = rng.random() * self._cumulative[-1]
        which = min(bisect.bisect_right(self._cumulative, at), len(self.domains) - 1)
        return self.domains[which][0]

    def shares(self) -> dict[str, float]:
        """Each domain's share of the picks (a domain listed twice adds up); they sum to 1."""
        total = self._cumulative[-1]
        shares: dict[str, float] = {}
        for domain, weight in self.domains:
            shares[domain] = shares.get(domain, 0.0) + weight / total
        return shares


class RecipientGenerator:
    """Recipient addresses over a :class:`DomainMix`, a share of them meant to be refused.

    A valid address is a local part from ``local_parts`` (chosen at random) or
    ``user{n}`` with n from 1 to 100000, at a domain of the mix. An invalid one
    (a share ``invalid_share`` of the picks) is ``invalid-<8 hex digits>`` at a
    domain of the mix too, so that a server that validates recipients in the
    domains it serves refuses it as an unknown user (550 5.1.1), not as a relay
    attempt; with ``invalid_domain`` it is at that domain instead (for testing
    a server's refusal of unknown domains). Nothing guarantees that the "valid"
    addresses exist on the server: give it ``local_parts`` it knows.
    """

    def __init__(
        self,
        domains: DomainMix,
        *,
        local_parts: Sequence[str] | None = None,
        invalid_share: float = 0.0,
        invalid_domain: str | None = None,
    ) -> None:
        if not 0.0 <= invalid_share <= 1.0:
            raise ValueError(f"invalid share must be from 0 to 1: {invalid_share!r}")
        if local_parts is not None:
            if not local_parts:
                raise ValueError("the list of local parts is empty")
            for local in local_parts:
                if not local or "@" in local or any(c.isspace() for c in local):
                    raise ValueError(f"not a local part: {local!r}")
        if invalid_domain is not None and not invalid_domain:
            raise ValueError("invalid domain is empty")
        self.domains = domains
        self.local_parts = None if local_parts is None else list(local_parts)
        self.invalid_share = invalid_share
        self.invalid_domain = invalid_domain

    def pick(self, rng: random.Random) -> tuple[str, bool]:
        """(address, whether it is meant to be valid)."""
        domain = self.domains.pick(rng)
        if self.invalid_share and rng.random() < self.invalid_share:
            return f"invalid-{rng.getrandbits(32):08x}@{self.invalid_domain or domain}", False
        if self.local_parts is None:
            local = f"user{rng.randint(1, 100000)}"
        else:
            local = self.local_parts[rng.randrange(len(self.local_parts))]
        return f"{local}@{domain}", True


def read_address_pool(path: str, column: str | int = 0) -> list[str]:
    """The addresses in one column of a CSV file (UTF-8, a BOM allowed), in file order.

    ``column`` is a header name (the first row is then the header; names match
    exactly, else ignoring case) or a 0-based index, with which the first row is
    data unless its cell has no ``@`` (then it is taken for a header). Cells are
    stripped of whitespace; empty cells and rows too short are skipped. A plain
    list of addresses, one a line, is such a file. ValueError if the file cannot
    be read or has no addresses.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise ValueError(f"address file {path!r}: no such file") from None
    except OSError as e:
        raise ValueError(f"address file {path!r}: cannot read it ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"address file {path!r} is not UTF-8 text (byte {e.start})") from None
    except csv.Error as e:
        raise ValueError(f"address file {path!r} is not CSV: {e}") from None
    if isinstance(column, str):
        if not rows:
            raise ValueError(f"address file {path!r} is empty")
        names = [cell.strip() for cell in rows[0]]
        wanted = column.strip()
        if wanted in names:
            index = names.index(wanted)
        elif wanted.lower() in (lowered := [name.lower() for name in names]):
            index = lowered.index(wanted.lower())
        else:
            raise ValueError(
                f"address file {path!r} has no column {column!r} (its header: {', '.join(names)})"
            )
        rows = rows[1:]
    else:
        if column < 0:
            raise ValueError(f"column index must be at least 0: {column}")
        index = column
        if rows and len(rows[0]) > index and "@" not in rows[0][index]:
            rows = rows[1:]  # a header
    addresses = [row[index].strip() for row in rows if len(row) > index and row[index].strip()]
    if not addresses:
        raise ValueError(f"address file {path!r} has no addresses in column {column!r}")
    return addresses


def unique_slice(items: Sequence[T], index: int, count: int) -> Sequence[T]:
    """The items of worker ``index`` of ``count``: ``items[index::count]``.

    Every item belongs to exactly one worker, and the workers' shares differ in
    length by at most one (a worker may get none if there are fewer items than
    workers).

    >>> [unique_slice("abcdefg", i, 3) for i in range(3)]
    ['adg', 'be', 'cf']
    """
    if count < 1:
        raise ValueError(f"worker count must be at least 1: {count}")
    if not 0 <= index < count:
        raise ValueError(f"worker index must be from 0 to {count - 1}: {index}")
    return items[index::count]
