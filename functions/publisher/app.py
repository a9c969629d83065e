"""Job status changes (the table's stream) -> "Batch Job State Change" events."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchplane.wiring import publisher

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:  # noqa: ARG001 - Lambda's handler signature (event, context)
    # Not powertools' BatchProcessor: that handles one record at a time, and the events
    # of a batch go ten to a PutEvents call. The answer is the same partial response
    # (ReportBatchItemFailures): the first record not published and every later one.
    failed = publisher().publish_records(event.get("Records", []))
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in failed]}
