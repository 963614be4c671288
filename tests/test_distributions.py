"""Distributions from specs, recipient domains and addresses, address pools and their split.

The statistical checks use fixed seeds and tolerances several standard errors wide: they
fail when a distribution is wrong, not by chance.
"""

from __future__ import annotations

import random
import re
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from locust_smtp.workload.distributions import (
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

N = 20_000


def samples(spec: str, *, sizes: bool = False, seed: int = 1, n: int = N) -> list[int]:
    distribution = parse_distribution(spec, sizes=sizes)
    rng = random.Random(seed)
    return [distribution.sample(rng) for _ in range(n)]


# --------------------------------------------------------------------------- the forms


@pytest.mark.parametrize(
    ("spec", "sizes", "kind", "value"),
    [
        ("3", False, Fixed, 3),
        ("fixed:3", False, Fixed, 3),
        (" fixed: 3 ", False, Fixed, 3),
        ("64K", True, Fixed, 65536),
        ("fixed:1.5M", True, Fixed, 1572864),
        ("fixed:1000", True, Fixed, 1000),
    ],
)
def test_a_fixed_number_is_always_drawn(spec: str, sizes: bool, kind: type, value: int) -> None:
    distribution = parse_distribution(spec, sizes=sizes)
    assert isinstance(distribution, kind)
    assert set(samples(spec, sizes=sizes, n=100)) == {value}


def test_uniform_covers_both_bounds_with_the_right_mean() -> None:
    drawn = samples("uniform:1-10")
    assert set(drawn) == set(range(1, 11))
    assert abs(statistics.fmean(drawn) - 5.5) < 0.1  # standard error ~0.02
    counts = Counter(drawn)
    assert all(abs(counts[v] / N - 0.1) < 0.015 for v in range(1, 11))


def test_uniform_sizes_take_suffixes() -> None:
    drawn = samples("uniform:1K-2K", sizes=True)
    assert min(drawn) == 1024 and max(drawn) == 2048
    assert abs(statistics.fmean(drawn) - 1536) < 10  # standard error ~2


def test_lognormal_has_its_median_and_its_spread() -> None:
    drawn = samples("lognormal:64K,1.0", sizes=True)
    assert abs(statistics.median(drawn) / 65536 - 1) < 0.03
    # one sigma either side of the median holds ~68% of the draws
    within = sum(65536 / 2.71828 <= d <= 65536 * 2.71828 for d in drawn) / N
    assert abs(within - 0.6827) < 0.015


def test_lognormal_counts_are_at_least_one_and_capped() -> None:
    drawn = samples("lognormal:1.5,1.5")
    assert min(drawn) == 1
    assert abs(statistics.median(drawn) - 1.5) <= 0.5
    capped = samples("lognormal:1M,2,4M", sizes=True)
    assert max(capped) == 4 * 1024 * 1024
    assert abs(statistics.median(capped) / 1048576 - 1) < 0.05
    assert set(samples("lognormal:5,0", n=100)) == {5}


def test_weights_give_each_value_its_share() -> None:
    drawn = Counter(samples("weights:1=70,2=20,5=10"))
    assert set(drawn) == {1, 2, 5}
    for value, share in ((1, 0.7), (2, 0.2), (5, 0.1)):
        assert abs(drawn[value] / N - share) < 0.015


def test_weighted_sizes_take_suffixes() -> None:
    assert set(samples("weights:1K=1,1M=1", sizes=True, n=200)) == {1024, 1048576}


def test_empirical_draws_the_sizes_of_a_corpus(tmp_path: Path) -> None:
    sizes = [10, 20, 20, 300]
    for n, size in enumerate(sizes):
        (tmp_path / f"{n}.eml").write_bytes(b"x" * size)
    distribution = parse_distribution(f"empirical:{tmp_path}", sizes=True)
    assert isinstance(distribution, Empirical)
    drawn = Counter(samples(f"empirical:{tmp_path}", sizes=True))
    assert set(drawn) == {10, 20, 300}
    assert abs(drawn[20] / N - 0.5) < 0.015


@pytest.mark.parametrize(
    ("spec", "sizes"),
    [
        ("fixed:3", False),
        ("fixed:64K", True),
        ("fixed:1000", True),
        ("uniform:1K-64K", True),
        ("uniform:2-9", False),
        ("lognormal:64K,1.2", True),
        ("lognormal:2.5,0.5,20", False),
        ("weights:1=70,2=20.5,5=10", False),
        ("weights:1K=1,3M=2", True),
    ],
)
def test_describe_gives_back_the_spec(spec: str, sizes: bool) -> None:
    distribution = parse_distribution(spec, sizes=sizes)
    assert distribution.describe() == spec
    again = parse_distribution(distribution.describe(), sizes=sizes)
    assert [again.sample(random.Random(s)) for s in range(50)] == [
        distribution.sample(random.Random(s)) for s in range(50)
    ]


def test_a_seed_reproduces_the_draws() -> None:
    for spec in ("uniform:1-1000", "lognormal:100,1", "weights:1=1,2=1,3=1"):
        assert samples(spec, seed=3, n=200) == samples(spec, seed=3, n=200)
        assert samples(spec, seed=3, n=200) != samples(spec, seed=4, n=200)


@pytest.mark.parametrize(
    ("spec", "sizes"),
    [
        ("", False),
        ("abc", False),
        ("0", False),
        ("fixed:-3", False),
        ("1.5", False),
        ("10K", False),
        ("10Q", True),
        ("0.1", True),
        ("uniform:5", False),
        ("uniform:5-2", False),
        ("uniform:0-2", False),
        ("lognormal:10", False),
        ("lognormal:0,1", False),
        ("lognormal:10,-1", False),
        ("lognormal:10,x", False),
        ("lognormal:10,1,0", False),
        ("lognormal:10K,1K", True),
        ("weights:1", False),
        ("weights:1=0", False),
        ("weights:0=1", False),
        ("weights:1=x", False),
        ("weights:", False),
        ("gauss:1,2", False),
        ("empirical:/nonexistent/corpus", True),
        ("empirical:/tmp", False),
    ],
)
def test_a_bad_spec_is_refused_quoting_it_and_the_forms(spec: str, sizes: bool) -> None:
    with pytest.raises(ValueError) as info:
        parse_distribution(spec, sizes=sizes)
    message = str(info.value)
    assert repr(spec) in message
    assert "accepted forms: N, fixed:N, uniform:A-B, lognormal:MEDIAN,SIGMA" in message
    assert ("K or M suffix" in message) == sizes


def test_distributions_refuse_bad_values_when_built_directly() -> None:
    for build in (
        lambda: Fixed(0),
        lambda: Uniform(3, 2),
        lambda: LogNormal(0, 1),
        lambda: LogNormal(1, float("nan")),
        lambda: Weighted([]),
        lambda: Weighted([(1, -1)]),
        lambda: Empirical([]),
    ):
        with pytest.raises(ValueError):
            build()


# --------------------------------------------------------------------------- domains


def test_a_domain_mix_picks_domains_by_weight() -> None:
    mix = DomainMix.parse("gmail.com:67,outlook.com:20,example.net:13")
    assert mix.shares() == pytest.approx(
        {"gmail.com": 0.67, "outlook.com": 0.2, "example.net": 0.13}
    )
    rng = random.Random(11)
    picks = Counter(mix.pick(rng) for _ in range(N))
    for domain, share in mix.shares().items():
        assert abs(picks[domain] / N - share) < 0.015


def test_a_domain_without_a_weight_weighs_one() -> None:
    mix = DomainMix.parse("a.example, b.example:3,[IPv6:2001:db8::1],[192.0.2.1]:2")
    assert mix.domains == [
        ("a.example", 1.0),
        ("b.example", 3.0),
        ("[IPv6:2001:db8::1]", 1.0),
        ("[192.0.2.1]", 2.0),
    ]
    assert mix.shares()["b.example"] == pytest.approx(3 / 7)


@pytest.mark.parametrize("spec", ["a.com:0", "a.com:-2", "a.com:x", "", "a.com,,b.com", "x@y.com"])
def test_a_bad_domain_mix_is_refused_quoting_it(spec: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(spec))):
        DomainMix.parse(spec)


# --------------------------------------------------------------------------- recipients


def test_recipients_have_their_share_of_invalid_addresses() -> None:
    domains = DomainMix.parse("a.example:3,b.example")
    generator = RecipientGenerator(domains, invalid_share=0.2)
    rng = random.Random(5)
    picks = [generator.pick(rng) for _ in range(N)]
    invalid = [address for address, valid in picks if not valid]
    assert abs(len(invalid) / N - 0.2) < 0.015
    assert all(re.fullmatch(r"invalid-[0-9a-f]{8}@[ab]\.example", a) for a in invalid)
    valid = [address for address, ok in picks if ok]
    numbers = [int(m.group(1)) for a in valid if (m := re.fullmatch(r"user(\d+)@[ab]\.example", a))]
    assert len(numbers) == len(valid)
    assert min(numbers) >= 1 and max(numbers) <= 100_000 and len(set(numbers)) > len(valid) * 0.9
    at_a = sum(address.endswith("@a.example") for address, _ in picks) / N
    assert abs(at_a - 0.75) < 0.015


def test_recipients_use_the_local_parts_given_and_the_invalid_domain_if_any() -> None:
    generator = RecipientGenerator(
        DomainMix.parse("x.example"),
        local_parts=["alice", "bob"],
        invalid_share=0.5,
        invalid_domain="nowhere.invalid",
    )
    rng = random.Random(2)
    picks = [generator.pick(rng) for _ in range(2000)]
    assert {a for a, valid in picks if valid} == {"alice@x.example", "bob@x.example"}
    assert all(a.endswith("@nowhere.invalid") for a, valid in picks if not valid)
    assert RecipientGenerator(DomainMix.parse("x.example")).pick(random.Random(1))[1] is True


def test_recipient_settings_are_checked() -> None:
    domains = DomainMix.parse("x.example")
    settings: list[dict[str, Any]] = [
        {"invalid_share": 1.5},
        {"invalid_share": -0.1},
        {"local_parts": []},
        {"local_parts": ["a@b"]},
        {"invalid_domain": ""},
    ]
    for kwargs in settings:
        with pytest.raises(ValueError):
            RecipientGenerator(domains, **kwargs)


# --------------------------------------------------------------------------- address pools


def csv_file(tmp_path: Path, text: str, encoding: str = "utf-8") -> str:
    path = tmp_path / "addresses.csv"
    path.write_text(text, encoding=encoding)
    return str(path)


def test_a_named_column_follows_the_header(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "name,Email\nA, a@x.example \nB,\nC,c@x.example\nD\n")
    assert read_address_pool(path, "Email") == ["a@x.example", "c@x.example"]
    assert read_address_pool(path, "email") == ["a@x.example", "c@x.example"]
    with pytest.raises(ValueError, match=r"no column 'mail'.*name, Email"):
        read_address_pool(path, "mail")


def test_a_column_index_skips_a_header_only_when_it_has_no_at(tmp_path: Path) -> None:
    with_header = csv_file(tmp_path, "\ufeffaddress,n\na@x,1\n\n b@x ,2\n", encoding="utf-8")
    assert read_address_pool(with_header) == ["a@x", "b@x"]
    without = csv_file(tmp_path, "a@x\nb@x\n")
    assert read_address_pool(without, 0) == ["a@x", "b@x"]
    second = csv_file(tmp_path, "1,a@x\n2,b@x\n")
    assert read_address_pool(second, 1) == ["a@x", "b@x"]


@pytest.mark.parametrize("text", ["", "email\n", "email\n \n,\n"])
def test_a_pool_without_addresses_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError, match=r"addresses\.csv"):
        read_address_pool(csv_file(tmp_path, text), 0)


def test_a_missing_or_unreadable_pool_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        read_address_pool(str(tmp_path / "none.csv"))
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"caf\xe9@x\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_address_pool(str(path))
    with pytest.raises(ValueError, match="at least 0"):
        read_address_pool(csv_file(tmp_path, "a@x\n"), -1)


# --------------------------------------------------------------------------- worker slices


def test_worker_slices_cover_every_item_exactly_once() -> None:
    for n in range(0, 30):
        items = [f"u{i}@x" for i in range(n)]
        for count in range(1, 8):
            slices = [unique_slice(items, index, count) for index in range(count)]
            assert Counter(item for s in slices for item in s) == Counter(items)
            lengths = [len(s) for s in slices]
            assert max(lengths) - min(lengths) <= 1


def test_worker_slices_are_interleaved() -> None:
    assert list(unique_slice(range(10), 1, 3)) == [1, 4, 7]
    assert unique_slice(["a", "b"], 0, 1) == ["a", "b"]


@pytest.mark.parametrize(("index", "count"), [(0, 0), (-1, 2), (2, 2), (5, 3)])
def test_a_worker_outside_the_count_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError):
        unique_slice([1, 2, 3], index, count)
