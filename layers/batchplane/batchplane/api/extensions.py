"""batchplane's own operations, beside the Batch ones: triggers and schedules.

``POST /v1/batchplane/<operation>`` with a JSON body, answered the way the Batch
operations are (JSON; ``ClientException`` with a message saying what to change). The
``/v1/batchplane/`` prefix can never collide with a Batch operation (those are one path
segment). The ``batchplane triggers`` and ``batchplane schedules`` commands call these.

=======================  =========================================================
operation                body
=======================  =========================================================
createtrigger            triggerName, bucket, prefix?, suffix?, jobQueue, jobDefinition,
                         jobName?, parameters?, containerOverrides?, shareIdentifier?, state?
describetriggers         triggerNames? | bucket?, maxResults?, nextToken?
updatetrigger            triggerName and the fields to change
deletetrigger            triggerName
createschedule           scheduleName, scheduleExpression, scheduleExpressionTimezone?,
                         overlapPolicy? (SKIP|ALLOW), jobQueue, jobDefinition, jobName?,
                         parameters?, containerOverrides?, shareIdentifier?, state?
describeschedules        scheduleNames?, maxResults?, nextToken?
updateschedule           scheduleName and the fields to change (state ENABLED|DISABLED ...)
deleteschedule           scheduleName
=======================  =========================================================
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from ..errors import ClientException
from ..wiring import services

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..wiring import Services

router = APIGatewayRouter()
MAX_BODY = 256 * 1024

OPERATIONS: dict[str, Callable[[Services, dict[str, Any]], dict[str, Any]]] = {
    "createtrigger": lambda s, b: s.triggers.create(b),
    "describetriggers": lambda s, b: s.triggers.describe(b),
    "updatetrigger": lambda s, b: s.triggers.update(b),
    "deletetrigger": lambda s, b: s.triggers.delete(b),
    "createschedule": lambda s, b: s.schedules.create(b),
    "describeschedules": lambda s, b: s.schedules.describe(b),
    "updateschedule": lambda s, b: s.schedules.update(b),
    "deleteschedule": lambda s, b: s.schedules.delete(b),
}


def _body() -> dict[str, Any]:
    raw = router.current_event.body or ""
    if len(raw) > MAX_BODY:
        raise ClientException(f"The request body is {len(raw)} bytes; the limit is {MAX_BODY}.")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise ClientException(f"The request body is not valid JSON: {e}.") from e
    except RecursionError as e:
        raise ClientException("The request body nests JSON too deeply.") from e
    if not isinstance(body, dict):
        raise ClientException("The request body must be a JSON object.")
    # The stores read a page token as text (a number or true here answered 500).
    token = body.get("nextToken")
    if token is not None and not isinstance(token, str):
        raise ClientException(f"nextToken must be a string, the one a listing returned; got {type(token).__name__}.")
    return body


@router.post("/v1/batchplane/<operation>")
def extension_operation(operation: str) -> dict[str, Any]:
    handler = OPERATIONS.get(operation.lower())
    if handler is None:
        raise ClientException(
            f"Unknown batchplane operation {operation!r}: use one of {', '.join(OPERATIONS)}."
        )
    body = _body()
    return handler(services(), body)
