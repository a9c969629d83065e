"""Scheduling policies (fair share): fairsharePolicy validation and the described shape."""

from __future__ import annotations

import math
from typing import Any

import pytest
from batchplane.domain import policies
from batchplane.errors import ClientException
from hypothesis import given
from hypothesis import strategies as st

ARN = "arn:aws:batch:us-east-1:123456789012:scheduling-policy/fair"


def _rejects(call, *fields: str) -> str:
    """Assert ``call`` raises ClientException whose message names every one of ``fields``."""
    with pytest.raises(ClientException) as info:
        call()
    for field in fields:
        assert field in info.value.message, (field, info.value.message)
    return info.value.message


def shares(*identifiers: str, **weights: float) -> dict[str, Any]:
    out = [{"shareIdentifier": i} for i in identifiers]
    out += [{"shareIdentifier": k, "weightFactor": v} for k, v in weights.items()]
    return {"shareDistribution": out}


def test_no_policy_means_zeros_and_no_shares() -> None:
    assert policies.fairshare(None) == {
        "shareDecaySeconds": 0,
        "computeReservation": 0,
        "shareDistribution": [],
    }
    assert policies.fairshare({}) == policies.fairshare(None)


def test_create_describes_the_policy() -> None:
    doc = policies.create(
        {
            "name": "fair",
            "fairsharePolicy": {
                "shareDecaySeconds": 3600,
                "computeReservation": 25,
                **shares("blue", red=0.5),
            },
            "tags": {"t": "v"},
        },
        ARN,
    )
    assert doc == {
        "name": "fair",
        "arn": ARN,
        "fairsharePolicy": {
            "shareDecaySeconds": 3600,
            "computeReservation": 25,
            "shareDistribution": [
                {"shareIdentifier": "blue"},
                {"shareIdentifier": "red", "weightFactor": 0.5},
            ],
        },
        "tags": {"t": "v"},
    }


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "has space"}, ["name"]),
        ({"name": None}, ["name"]),
        ({"name": "ok", "tags": {"aws:x": "y"}}, ["aws:"]),
        ({"name": "ok", "fairsharePolicy": "fast"}, ["fairsharePolicy"]),
    ],
)
def test_create_mistakes(body: dict[str, Any], fields: list[str]) -> None:
    _rejects(lambda: policies.create(body, ARN), *fields)


@pytest.mark.parametrize("value", [0, 1, 99])
def test_compute_reservation_in_range(value: int) -> None:
    assert policies.fairshare({"computeReservation": value})["computeReservation"] == value


@pytest.mark.parametrize("value", [-1, 100, 50.0, "50", True])
def test_compute_reservation_out_of_range(value: object) -> None:
    _rejects(
        lambda: policies.fairshare({"computeReservation": value}),
        "fairsharePolicy.computeReservation",
    )


@pytest.mark.parametrize("value", [0, 600, 604800])
def test_share_decay_in_range(value: int) -> None:
    assert policies.fairshare({"shareDecaySeconds": value})["shareDecaySeconds"] == value


@pytest.mark.parametrize("value", [-1, 604801, 1.5, "60"])
def test_share_decay_out_of_range(value: object) -> None:
    _rejects(
        lambda: policies.fairshare({"shareDecaySeconds": value}),
        "fairsharePolicy.shareDecaySeconds",
    )


@pytest.mark.parametrize("weight", [0.0001, 0.125, 1, 1.0, 500, 999.9999])
def test_weight_factor_in_range(weight: float) -> None:
    out = policies.fairshare(shares(a=weight))
    assert out["shareDistribution"] == [{"shareIdentifier": "a", "weightFactor": weight}]


@pytest.mark.parametrize(
    "weight", [0, 0.00009, -1, 1000, 999.99991, math.nan, math.inf, "1", True, None]
)
def test_weight_factor_out_of_range(weight: object) -> None:
    message = _rejects(lambda: policies.fairshare(shares(a=weight)), "weightFactor", "'a'")
    assert "number" in message or "0.0001" in message


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-2000, max_value=2000))
def test_weight_factor_accepted_exactly_in_range(weight: float) -> None:
    if 0.0001 <= weight <= 999.9999:
        assert (
            policies.fairshare(shares(a=weight))["shareDistribution"][0]["weightFactor"] == weight
        )
    else:
        _rejects(lambda: policies.fairshare(shares(a=weight)), "weightFactor")


def test_weight_is_omitted_when_not_given() -> None:
    # AWS applies the default weight of 1.0 itself; the described policy shows what was set.
    assert policies.fairshare(shares("a"))["shareDistribution"] == [{"shareIdentifier": "a"}]


@pytest.mark.parametrize("ident", ["a", "UserA", "team-1_x", "UserA*", "a" * 255, "a" * 255 + "*"])
def test_share_identifier_accepted(ident: str) -> None:
    assert policies.fairshare(shares(ident))["shareDistribution"][0]["shareIdentifier"] == ident


@pytest.mark.parametrize(
    "ident",
    ["", "*", "**", "User**", "Us*er", "*User", "a b", "a.b", "a" * 256, "a\n", "a*\n", None, 5],
)
def test_share_identifier_rejected(ident: object) -> None:
    _rejects(
        lambda: policies.fairshare({"shareDistribution": [{"shareIdentifier": ident}]}),
        "shareIdentifier",
    )


def test_share_entry_must_be_an_object() -> None:
    _rejects(lambda: policies.fairshare({"shareDistribution": ["blue"]}), "shareIdentifier")


def test_share_identifier_listed_twice() -> None:
    _rejects(lambda: policies.fairshare(shares("blue", "blue")), "shareDistribution", "'blue'")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("UserA*", "UserA1"),
        ("UserA1", "UserA*"),
        ("User*", "UserA*"),
        ("UserA*", "User*"),
        ("User*", "User"),
    ],
)
def test_wildcard_identifiers_may_not_overlap(first: str, second: str) -> None:
    # AWS: "you can't have one that specifies a shareIdentifier of UserA* and another
    # that specifies a shareIdentifier of UserA1".
    _rejects(lambda: policies.fairshare(shares(first, second)), "shareDistribution", "overlap")


@pytest.mark.parametrize(
    ("first", "second"), [("UserA*", "UserB"), ("UserA*", "UserB*"), ("UserA*", "User")]
)
def test_disjoint_identifiers_are_fine(first: str, second: str) -> None:
    assert len(policies.fairshare(shares(first, second))["shareDistribution"]) == 2


def test_at_most_500_shares() -> None:
    assert (
        len(policies.fairshare(shares(*[f"s{i}" for i in range(500)]))["shareDistribution"]) == 500
    )
    _rejects(
        lambda: policies.fairshare(shares(*[f"s{i}" for i in range(501)])),
        "shareDistribution",
        "500",
    )


def test_share_distribution_must_be_a_list() -> None:
    _rejects(
        lambda: policies.fairshare({"shareDistribution": {"shareIdentifier": "a"}}),
        "shareDistribution",
    )


@given(
    st.lists(
        st.text(alphabet="ab", min_size=1, max_size=4).flatmap(
            lambda s: st.sampled_from([s, s + "*"])
        ),
        min_size=1,
        max_size=6,
        unique=True,
    )
)
def test_an_accepted_distribution_gives_every_share_at_most_one_entry(
    identifiers: list[str],
) -> None:
    def entries_for(share: str) -> list[str]:
        return [
            i for i in identifiers if (share.startswith(i[:-1]) if i.endswith("*") else share == i)
        ]

    try:
        policies.fairshare(shares(*identifiers))
    except ClientException as e:
        assert "overlap" in e.message
        # Rejected only when some share identifier really would match two entries.
        bases = [i.rstrip("*") for i in identifiers]
        assert any(len(entries_for(b)) > 1 for b in bases)
    else:
        for base in (i.rstrip("*") for i in identifiers):
            assert len(entries_for(base)) <= 1
