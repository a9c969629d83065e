"""Server-side checks of request bodies against botocore's own model of the Batch API,
so that wrong types and missing fields get the same words the SDK would use."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

from ..errors import ClientException


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
