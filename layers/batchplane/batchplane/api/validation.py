"""Server-side checks of request bodies against botocore's own model of the Batch API,
so that wrong types and missing fields get the same words the SDK would use, and numbers
that do not fit the model's integer types are refused before any code computes with them."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

from ..errors import ClientException

# The model's integer types are Java's (AWS answers a number past them with a 400).
INT_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
SHOWN_DIGITS = 24  # a longer number is said by its length in an error, not echoed


@lru_cache(maxsize=1)
def _model() -> Any:
    return botocore.session.get_session().get_service_model("batch")


def operation_names() -> dict[str, str]:
    """Lower-case path segment -> operation name, for every POST /v1/<op> operation."""
    model = _model()
    out = {}
    for name in model.operation_names:
        uri = model.operation_model(name).http["requestUri"]
        if "{" not in uri:
            out[uri.rsplit("/", 1)[-1]] = name
    return out


def check(operation: str, body: dict[str, Any]) -> None:
    shape = _model().operation_model(operation).input_shape
    if shape is None:
        return
    known = set(shape.members)
    unknown = sorted(set(body) - known)
    if unknown:
        raise ClientException(
            f"{operation} does not take {', '.join(unknown)}; it takes {', '.join(sorted(known))}."
        )
    report = ParamValidator().validate(body, shape)
    if report.has_errors():
        raise ClientException(report.generate_report().replace("\n", " ").strip())
    out_of_range = _out_of_range(body, shape, "")
    if out_of_range:
        raise ClientException(out_of_range)


def _out_of_range(value: Any, shape: Any, path: str) -> str | None:
    """Where ``value`` holds an integer its shape's type cannot hold, said for a person
    (JSON numbers have no bounds: 10**400 is a valid one, which float() cannot take)."""
    kind = shape.type_name
    if kind in INT_RANGES and isinstance(value, int) and not isinstance(value, bool):
        lo, hi = INT_RANGES[kind]
        if lo <= value <= hi:
            return None
        digits = len(str(abs(value)))
        got = str(value) if digits <= SHOWN_DIGITS else f"{'-' if value < 0 else ''}a number of {digits:,} digits"
        bits = 32 if kind == "integer" else 64
        return f"{path} must be an integer from {lo} to {hi} (a {bits}-bit integer); got {got}."
    if kind == "structure" and isinstance(value, dict):
        items = ((k, v, shape.members[k]) for k, v in value.items() if k in shape.members)
        for k, v, inner in items:
            found = _out_of_range(v, inner, f"{path}.{k}" if path else k)
            if found:
                return found
    elif kind == "list" and isinstance(value, list):
        for i, v in enumerate(value):
            found = _out_of_range(v, shape.member, f"{path}[{i}]")
            if found:
                return found
    elif kind == "map" and isinstance(value, dict):
        for k, v in value.items():
            found = _out_of_range(v, shape.value, f"{path}.{k}")
            if found:
                return found
    return None
