"""Scheduler: woken by the table's stream (new work, freed capacity) and a periodic tick."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchplane.service.reactions import resource_wakes_scheduler, wakes_scheduler
from batchplane.store.jobs import is_job
from batchplane.wiring import services

logger = Logger()
tracer = Tracer()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord, parents: set[str]) -> bool:
    """React to one change; True when it may let a scheduling pass dispatch more. Array
    parents whose children ended are added to ``parents``, settled once per batch."""
    change = record.dynamodb
    if change is None:
        return False
    if not is_job(change.keys):
        return resource_wakes_scheduler(change.keys)
    if not change.new_image:
        if change.old_image:
            services().reactions.job_removed(change.old_image)
        return False
    runnable = services().reactions.job_changed(change.new_image, change.old_image, parents)
    return runnable or wakes_scheduler(change.new_image, change.old_image)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    result: dict = {"batchItemFailures": []}
    woken = "Records" not in event  # the tick always runs a pass
    if "Records" in event:
        wakes: list[bool] = []
        parents: set[str] = set()
        result = process_partial_response(
            event=event, record_handler=lambda record: wakes.append(record_handler(record, parents)),
            processor=processor, context=context,
        )
        # If settling fails the invocation fails and the whole batch comes again: the
        # reactions above are idempotent.
        services().reactions.settle(parents)
        woken = any(wakes)
    if not woken:
        return result
    if "Records" not in event:
        # The tick first does what no event does, or what a lost event left undone.
        services().watchdog.sweep()
    dispatched = services().scheduler.schedule()
    logger.debug("scheduling pass", extra={"dispatched": dispatched})
    return result
