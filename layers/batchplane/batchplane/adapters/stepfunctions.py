"""Starts the array fan-out state machine (statemachines/array.asl.json)."""

from __future__ import annotations

import json
import os
from typing import Any

from .. import aws
from ..domain import arrays


class StepFunctionsWorkflows:
    def __init__(self, sfn: Any | None = None, state_machine_arn: str | None = None) -> None:
        self.sfn = sfn or aws.client("stepfunctions")
        self.arn = state_machine_arn or os.environ.get("BATCHPLANE_ARRAY_STATE_MACHINE", "")

    def start_array(self, parent_id: str, action: str, size: int) -> None:
        if not self.arn:
            raise RuntimeError("BATCHPLANE_ARRAY_STATE_MACHINE is not set")
        payload = {"parentId": parent_id, "action": action, "chunks": arrays.chunks(size)}
        try:
            # A Standard workflow's name is unique for 90 days: starting the same
            # (parent, action) twice is a no-op, which makes redelivered events harmless.
            self.sfn.start_execution(stateMachineArn=self.arn, name=f"{parent_id}-{action}",
                                     input=json.dumps(payload))
        except self.sfn.exceptions.ExecutionAlreadyExists:
            pass
