"""ECS task state changes (attempt started / ended) and Spot interruption warnings."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchplane.service.tasks import on_task_state_change
from batchplane.wiring import services

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict:  # noqa: ARG001 - Lambda's handler signature (event, context)
    if event.detail_type == "ECS Task State Change":
        status = on_task_state_change(services().attempts, event.detail)
        return {"status": status}
    if event.detail_type == "EC2 Spot Instance Interruption Warning":
        stopped = services().watchdog.on_spot_interruption(event.detail)
        logger.info("spot interruption", extra={"instance": event.detail.get("instance-id"), "stopped": stopped})
        return {"status": "INTERRUPTED", "stopped": stopped}
    logger.info("ignored event", extra={"detail_type": event.detail_type})
    return {"status": None}
