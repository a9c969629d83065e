"""S3 "Object Created" events (EventBridge rule) and schedule firings (EventBridge
Scheduler) -> SubmitJob, once per object write or firing however often it is delivered."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchplane.wiring import services

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:  # noqa: ARG001 - Lambda's handler signature (event, context)
    if event.get("source") == "aws.s3":
        return {"submissions": services().triggers.on_object_created(event)}
    if "schedule" in event and "scheduledTime" in event:
        return services().schedules.fire(event["schedule"], event["scheduledTime"])
    logger.warning("ignored event", extra={"keys": sorted(event)})
    return {"ignored": True}
