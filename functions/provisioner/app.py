"""Provisioner: EC2 capacity for MANAGED EC2/SPOT compute environments. Woken by compute
environment changes (the table's stream) and every minute (demand changes with jobs)."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchplane.store.dynamodb import Item
from batchplane.wiring import provisioning

logger = Logger()
tracer = Tracer()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    # A deleted environment's instances go now; every other change is planned below.
    old = record.raw_event.get("dynamodb", {}).get("OldImage")
    if record.raw_event.get("eventName") == "REMOVE" and old:
        provisioning().removed(Item.from_dynamo(old).doc)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    result: dict = {"batchItemFailures": []}
    if "Records" in event:
        result = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    else:
        # The tick also removes what deleted environments left behind when their stream
        # record was dropped after its retries.
        removed = provisioning().sweep()
        if removed:
            logger.warning("removed orphaned capacity", extra={"groups": removed})
    desired = provisioning().provision()
    logger.debug("provisioning pass", extra={"desiredvCpus": desired})
    return result
