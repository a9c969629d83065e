"""The shared validators: names, integers in range, tags, lists of strings."""

from __future__ import annotations

import string

import pytest
from batchplane.domain import checks
from batchplane.errors import ClientException
from hypothesis import given
from hypothesis import strategies as st

NAME_CHARS = string.ascii_letters + string.digits + "-_"


def _rejects(call, *fields: str) -> str:
    """Assert ``call`` raises ClientException whose message names every one of ``fields``."""
    with pytest.raises(ClientException) as info:
        call()
    for field in fields:
        assert field in info.value.message, (field, info.value.message)
    return info.value.message


# -- resource names --------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a", "A-b_9", "x" * 128, "-leading-hyphen", "_x"])
def test_name_accepts_letters_digits_hyphens_underscores(value: str) -> None:
    assert checks.name(value, "jobQueueName") == value


@pytest.mark.parametrize(
    "value",
    ["", "x" * 129, "has space", "dot.ted", "colon:1", "slash/x", "é", "abc\n", None, 12, ["a"]],
)
def test_name_rejects_with_the_field_named(value: object) -> None:
    _rejects(lambda: checks.name(value, "computeEnvironmentName"), "computeEnvironmentName")


@given(st.text(alphabet=NAME_CHARS, min_size=1, max_size=128))
def test_name_accepts_every_string_of_the_allowed_alphabet(value: str) -> None:
    assert checks.name(value, "n") == value


@given(
    st.text(alphabet=NAME_CHARS, max_size=60),
    st.characters(exclude_characters=NAME_CHARS),
    st.text(alphabet=NAME_CHARS, max_size=60),
)
def test_name_rejects_any_character_outside_the_alphabet(head: str, bad: str, tail: str) -> None:
    _rejects(lambda: checks.name(head + bad + tail, "jobDefinitionName"), "jobDefinitionName")


@pytest.mark.parametrize("value", ["a", "9lives", "job-1_x", "j" * 128])
def test_job_name_accepts(value: str) -> None:
    assert checks.job_name(value) == value


@pytest.mark.parametrize("value", ["", "-job", "_job", "j" * 129, "job name", "job\n", None])
def test_job_name_must_start_alphanumeric_and_fit(value: object) -> None:
    _rejects(lambda: checks.job_name(value), "jobName")


# -- integers --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None, [1]])
def test_int_range_wants_a_real_integer(value: object) -> None:
    message = _rejects(lambda: checks.int_range(value, 0, 10, "priority"), "priority")
    assert "integer" in message


@pytest.mark.parametrize(
    ("value", "lo", "hi", "words"),
    [
        (-1, 0, 10, "between 0 and 10"),
        (11, 0, 10, "between 0 and 10"),
        (59, 60, None, "at least 60"),
        (11, None, 10, "at most 10"),
    ],
)
def test_int_range_says_which_bound(value: int, lo: int | None, hi: int | None, words: str) -> None:
    message = _rejects(lambda: checks.int_range(value, lo, hi, "timeout"), "timeout")
    assert words in message


@given(st.integers(-(10**6), 10**6), st.integers(-100, 100), st.integers(0, 200))
def test_int_range_accepts_exactly_the_closed_interval(value: int, lo: int, width: int) -> None:
    hi = lo + width
    if lo <= value <= hi:
        assert checks.int_range(value, lo, hi, "x") == value
    else:
        _rejects(lambda: checks.int_range(value, lo, hi, "x"), "x")


# -- tags ------------------------------------------------------------------------------


def test_tags_default_to_empty_and_are_copied() -> None:
    assert checks.tags(None) == {}
    given_tags = {"team": "a"}
    out = checks.tags(given_tags)
    assert out == given_tags
    assert out is not given_tags


def test_fifty_tags_are_allowed_fifty_one_are_not() -> None:
    assert len(checks.tags({f"k{i}": "v" for i in range(50)})) == 50
    message = _rejects(lambda: checks.tags({f"k{i}": "v" for i in range(51)}), "50", "tags")
    assert "51" in message


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (["a"], "tags"),
        ({"": "v"}, "Tag key"),
        ({"k" * 129: "v"}, "Tag key"),
        ({"aws:owner": "v"}, "aws:"),
        ({"AWS:owner": "v"}, "aws:"),
        ({"k": "v" * 257}, "'k'"),
        ({"k": 1}, "'k'"),
    ],
)
def test_bad_tags_are_named(value: object, field: str) -> None:
    _rejects(lambda: checks.tags(value), field)


def test_tags_keep_the_caller_field_name() -> None:
    _rejects(lambda: checks.tags("x", "computeResources.tags"), "computeResources.tags")


def test_tag_limits_are_inclusive() -> None:
    assert checks.tags({"k" * 128: "v" * 256})


# -- lists and extras ------------------------------------------------------------------


@pytest.mark.parametrize("value", ["sg-1", [1], ["a", None], {"a": "b"}])
def test_strings_wants_a_list_of_strings(value: object) -> None:
    _rejects(lambda: checks.strings(value, "computeResources.subnets"), "computeResources.subnets")


def test_strings_defaults_to_empty() -> None:
    assert checks.strings(None, "x") == []


def test_reject_extra_lists_every_unknown_key() -> None:
    checks.reject_extra({"a": 1}, {"a", "b"}, "thing")
    _rejects(lambda: checks.reject_extra({"a": 1, "z": 2, "y": 3}, {"a"}, "thing"), "y, z", "thing")


def test_one_of_lists_the_choices() -> None:
    _rejects(lambda: checks.one_of("X", ("A", "B"), "state"), "state", "A, B", "'X'")


@given(st.text())
def test_process_text_takes_exactly_the_text_a_process_can_be_given(text: str) -> None:
    """Refused exactly when the text holds a NUL or a lone surrogate (it cannot be encoded)."""
    try:
        text.encode("utf-8")
        passable = "\0" not in text
    except UnicodeEncodeError:
        passable = False
    if passable:
        assert checks.process_text(text, "v") == text
    else:
        _rejects(lambda: checks.process_text(text, "field"), "field")


def test_arguments_name_the_element() -> None:
    assert checks.arguments(["a", "b"], "command") == ["a", "b"]
    assert "command[1]" in _rejects(lambda: checks.arguments(["a", "b\0"], "command"), "NUL")
    assert "position 2" in _rejects(lambda: checks.arguments(["ab\udc80"], "command"), "surrogate")
