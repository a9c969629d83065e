"""Scheduler: woken by the table's stream (new work, freed capacity) and a periodic tick."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchplane.wiring import services

logger = Logger()
tracer = Tracer()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    change = record.dynamodb
    if change and change.new_image and change.keys.get("sk") == "JOB":
        services().reactions.job_changed(change.new_image, change.old_image)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    result: dict = {"batchItemFailures": []}
    if "Records" in event:
        result = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    # The tick also sweeps for jobs whose stream record was dropped after its retries.
    dispatched = services().scheduler.schedule(sweep="Records" not in event)
    logger.debug("scheduling pass", extra={"dispatched": dispatched})
    return result
