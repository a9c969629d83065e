"""Job status changes (the table's stream) -> "Batch Job State Change" events."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    FailureResponse,
    SuccessResponse,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchplane import aws
from batchplane.service.events_out import PublishError, StateChangePublisher

logger = Logger()
tracer = Tracer()


class InOrderProcessor(BatchProcessor):
    """Stops at the first failed record and reports it and every later one, so that Lambda
    retries from there and one job's events never overtake each other."""

    def _process_record(self, record: dict) -> SuccessResponse | FailureResponse:
        if self.fail_messages:
            data = self._to_batch_type(record=record, event_type=self.event_type, model=self.model)
            error = PublishError("an earlier record of this batch failed")
            return self.failure_handler(record=data, exception=(PublishError, error, None))
        return super()._process_record(record)


processor = InOrderProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    StateChangePublisher(aws.client("events")).publish_record(record.raw_event)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
