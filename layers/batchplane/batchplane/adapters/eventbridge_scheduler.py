"""EventBridge Scheduler: one AWS schedule per batchplane schedule, in the stack's schedule
group, invoking the triggers function with the firing's scheduled time.

The table holds the schedule as the API shows it; the AWS schedule only carries what
Scheduler needs to fire (expression, time zone, state, target). In local mode the same
calls reach moto's Scheduler, and local/bus.py fires what moto stores.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ..errors import ClientException, ServerException

# Scheduler replaces these placeholders in the target's Input at each firing.
INPUT = {
    "schedule": None,  # filled with the schedule name
    "scheduledTime": "<aws.scheduler.scheduled-time>",
    "executionId": "<aws.scheduler.execution-id>",
}


@dataclass(frozen=True)
class SchedulerSettings:
    group: str
    target_arn: str
    role_arn: str
    dead_letter_arn: str | None

    @classmethod
    def from_env(cls) -> SchedulerSettings:
        env = os.environ
        missing = [
            k
            for k in (
                "BATCHPLANE_SCHEDULE_GROUP",
                "BATCHPLANE_SCHEDULE_TARGET_ARN",
                "BATCHPLANE_SCHEDULE_ROLE_ARN",
            )
            if not env.get(k)
        ]
        if missing:
            raise ServerException(
                f"Schedules are not configured on this deployment ({', '.join(missing)} unset): "
                "deploy template.yaml, which sets them on the API function."
            )
        return cls(
            group=env["BATCHPLANE_SCHEDULE_GROUP"],
            target_arn=env["BATCHPLANE_SCHEDULE_TARGET_ARN"],
            role_arn=env["BATCHPLANE_SCHEDULE_ROLE_ARN"],
            dead_letter_arn=env.get("BATCHPLANE_SCHEDULE_DLQ_ARN") or None,
        )


class EventBridgeSchedules:
    def __init__(self, client: Any, config: SchedulerSettings) -> None:
        self.client = client
        self.config = config

    def put(self, doc: dict[str, Any]) -> None:
        """Create or replace the AWS schedule of a batchplane schedule document."""
        target: dict[str, Any] = {
            "Arn": self.config.target_arn,
            "RoleArn": self.config.role_arn,
            "Input": json.dumps({**INPUT, "schedule": doc["scheduleName"]}),
            # Scheduler invokes Lambda asynchronously; these retries cover throttling and
            # service errors of the invoke itself (the function's own errors are retried by
            # Lambda and end in the dead-letter queue).
            "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 20},
        }
        if self.config.dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self.config.dead_letter_arn}
        definition = {
            "Name": doc["scheduleName"],
            "GroupName": self.config.group,
            "ScheduleExpression": doc["scheduleExpression"],
            "ScheduleExpressionTimezone": doc["scheduleExpressionTimezone"],
            "State": doc["state"],
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": target,
            "Description": f"batchplane schedule {doc['scheduleName']}",
        }
        try:
            try:
                self.client.create_schedule(**definition)
            except ClientError as e:
                if _code(e) != "ConflictException":
                    raise
                self.client.update_schedule(**definition)  # left over from an earlier attempt
        except ClientError as e:
            raise _translate(e) from e

    def delete(self, name: str) -> None:
        try:
            self.client.delete_schedule(Name=name, GroupName=self.config.group)
        except ClientError as e:
            if _code(e) != "ResourceNotFoundException":
                raise _translate(e) from e


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _translate(e: ClientError) -> Exception:
    code = _code(e)
    message = e.response.get("Error", {}).get("Message", str(e))
    if code == "ValidationException":
        return ClientException(f"EventBridge Scheduler rejected the schedule: {message}")
    if code == "ThrottlingException":
        return ClientException(
            f"EventBridge Scheduler is throttling ({message}); retry the request."
        )
    if code == "ServiceQuotaExceededException":
        return ClientException(
            f"EventBridge Scheduler's quota is reached ({message}): delete unused schedules "
            "or raise the quota."
        )
    return e
