"""Small validation helpers shared by every resource; each raises ClientException."""

from __future__ import annotations

import re
from typing import Any

from ..errors import ClientException

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
MAX_TAGS = 50
MAX_TAG_KEY, MAX_TAG_VALUE = 128, 256  # characters
# A surrogate code point left in a str after JSON decoding has no partner: json.loads
# joins every valid pair into one character.
_SURROGATE = re.compile("[\ud800-\udfff]")


def name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ClientException(
            f"{what} {value!r} is not valid: use 1 to 128 letters, numbers, "
            "hyphens (-) and underscores (_)."
        )
    return value


def job_name(value: Any) -> str:
    if not isinstance(value, str) or not _JOB_NAME.fullmatch(value):
        raise ClientException(
            f"jobName {value!r} is not valid: use 1 to 128 letters, numbers, hyphens (-) "
            "and underscores (_), starting with a letter or number."
        )
    return value


def one_of(value: Any, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ClientException(f"{what} must be one of {', '.join(allowed)}; got {value!r}.")
    return value


def int_range(value: Any, lo: int | None, hi: int | None, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ClientException(f"{what} must be an integer; got {value!r}.")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if hi is None:
            raise ClientException(f"{what} must be at least {lo}; got {value}.")
        if lo is None:
            raise ClientException(f"{what} must be at most {hi}; got {value}.")
        raise ClientException(f"{what} must be between {lo} and {hi}; got {value}.")
    return value


def tags(value: Any, what: str = "tags") -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ClientException(f"{what} must be a map of strings to strings.")
    if len(value) > MAX_TAGS:
        raise ClientException(f"A resource can have at most {MAX_TAGS} tags; got {len(value)}.")
    for k, v in value.items():
        if not isinstance(k, str) or not 1 <= len(k) <= MAX_TAG_KEY:
            raise ClientException(f"Tag key {k!r} must be 1 to 128 characters.")
        if k.lower().startswith("aws:"):
            raise ClientException(f"Tag key {k!r} is reserved: keys may not start with 'aws:'.")
        if not isinstance(v, str) or len(v) > MAX_TAG_VALUE:
            raise ClientException(f"Tag {k!r} must have a string value of at most 256 characters.")
    return dict(value)


def strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ClientException(f"{what} must be a list of strings.")
    return list(value)


def process_text(value: str, what: str) -> str:
    """A string a process can be given (an argv element, an environment name or value):
    a NUL would end it early, and a lone surrogate is not Unicode, so neither can be
    passed on."""
    if "\0" in value:
        raise ClientException(
            f"{what} contains a NUL character (\\u0000) at position {value.index(chr(0))}, which "
            "cannot be passed to a process: remove it."
        )
    lone = _SURROGATE.search(value)
    if lone:
        raise ClientException(
            f"{what} contains a lone surrogate (\\u{ord(lone.group()):04x}) at position "
            f"{lone.start()}, which is not valid Unicode: send the text as valid UTF-8."
        )
    return value


def arguments(value: Any, what: str) -> list[str]:
    """A command: a list of strings each a process can be given."""
    out = strings(value, what)
    for i, arg in enumerate(out):
        process_text(arg, f"{what}[{i}]")
    return out


def reject_extra(given: dict[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ClientException(f"{what} does not support {', '.join(unknown)}.")
