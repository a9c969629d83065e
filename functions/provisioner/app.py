"""Provisioner: EC2 capacity for MANAGED EC2/SPOT compute environments. Woken by
"batchplane Compute Environment Change" events (the publisher makes them from the
table's stream) and every minute (demand changes with jobs)."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchplane.adapters.eventbridge import ENVIRONMENT_CHANGE
from batchplane.wiring import provisioning

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:  # noqa: ARG001 - Lambda's handler signature (event, context)
    if event.get("detail-type") == ENVIRONMENT_CHANGE:
        # A deleted environment's instances go now; every other change is planned below.
        detail = event["detail"]
        if detail["change"] == "DELETED":
            provisioning().removed(detail["computeEnvironment"])
    else:
        # The tick also removes what deleted environments left behind when their event
        # was lost after its retries.
        removed = provisioning().sweep()
        if removed:
            logger.warning("removed orphaned capacity", extra={"groups": removed})
    desired = provisioning().provision()
    logger.debug("provisioning pass", extra={"desiredvCpus": desired})
    return {"desiredvCpus": desired}
