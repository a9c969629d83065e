"""Starts the array fan-out state machine (statemachines/array.asl.json)."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from .. import aws
from ..domain import arrays

log = logging.getLogger(__name__)
# Runs of one fan-out started again after the one before ended with the parent still
# waiting (its Failed step ran out of retries too): each is a tick apart, a minute or more.
MAX_RESTARTS = 1000


class StepFunctionsWorkflows:
    def __init__(self, sfn: Any | None = None, state_machine_arn: str | None = None) -> None:
        self.sfn = sfn or aws.client("stepfunctions")
        self.arn = state_machine_arn or os.environ.get("BATCHPLANE_ARRAY_STATE_MACHINE", "")

    def start_array(self, parent_id: str, action: str, size: int, *, restart: bool = False) -> None:
        if not self.arn:
            raise RuntimeError("BATCHPLANE_ARRAY_STATE_MACHINE is not set")
        payload = json.dumps({"parentId": parent_id, "action": action, "chunks": arrays.chunks(size)})
        # A Standard workflow's name is unique for 90 days: starting the same (parent,
        # action) twice is a no-op, which makes redelivered events harmless. A restart
        # takes the next name, <parentId>-<action>-r<n>, once the run before it ended.
        name = f"{parent_id}-{action}"
        for n in range(1, MAX_RESTARTS + 2):
            try:
                self.sfn.start_execution(stateMachineArn=self.arn, name=name, input=payload)
                return
            except self.sfn.exceptions.ExecutionAlreadyExists:
                if not restart or self._running(name):
                    return
            name = f"{parent_id}-{action}-r{n}"
        log.error("the %s fan-out of array %s was started %d times: not again", action, parent_id, MAX_RESTARTS)

    def _running(self, name: str) -> bool:
        # arn:aws:states:<region>:<account>:stateMachine:<machine> -> ...:execution:<machine>:<name>
        execution = self.arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
        return self.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
