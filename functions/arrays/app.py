"""Tasks of the array fan-out state machine: one chunk of children, then the last step."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchplane.wiring import services

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:  # noqa: ARG001 - Lambda's handler signature (event, context)
    arrays = services().arrays
    if event.get("phase") == "failed":
        services().jobs.fanout_failed(event["parentId"], event["action"], event.get("error") or {})
        return {"recorded": True}
    if event.get("phase") == "done":
        arrays.finish_fanout(event["parentId"], event["action"])
        return {"done": True}
    changed = arrays.run_chunk(event["parentId"], event["action"], int(event["start"]), int(event["count"]))
    return {"changed": changed}
