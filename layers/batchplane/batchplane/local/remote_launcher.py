"""The local launcher, called from a process that is not the stack's.

The launcher runs attempts as children of the stack's process, and follows them there. A
use case in a worker process (the Batch API, whose TerminateJob stops a task) reaches it
the way the API function reaches ECS on AWS: over an API, here the stack's internal port,
which only the stack's own processes are told. ``RemoteLauncher`` is the TaskLauncher port
on the calling side; ``answer`` serves one call on the stack's side.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..ports import CapacityUnavailable, LaunchFailed, LaunchRequest
from .launcher import json_default

if TYPE_CHECKING:
    from ..ports import TaskLauncher

PATH = "/_batchplane/launcher/"  # + the method's name, on the stack's internal port
TIMEOUT_SECONDS = 60.0
# What a launcher may raise that its caller acts on: sent back by name and raised again.
_KNOWN_ERRORS: dict[str, type[Exception]] = {"CapacityUnavailable": CapacityUnavailable,
                                             "LaunchFailed": LaunchFailed}


class RemoteLauncher:
    """A TaskLauncher whose calls are answered by the stack's launcher (``endpoint``: the
    stack's internal port)."""

    def __init__(self, endpoint: str) -> None:
        parts = urlsplit(endpoint)
        assert parts.hostname and parts.port, endpoint
        self.host, self.port = parts.hostname, parts.port

    def launch(self, request: LaunchRequest) -> str:
        return str(self._call("launch", request=dataclasses.asdict(request)))

    def stop(self, task_arn: str, reason: str) -> None:
        self._call("stop", task_arn=task_arn, reason=reason)

    def attempts_on_instance(self, instance_id: str, clusters: list[str]) -> list[tuple[str, int]]:
        found = self._call("attempts_on_instance", instance_id=instance_id, clusters=clusters)
        return [(str(job_id), int(run)) for job_id, run in found]

    def describe(self, task_arns: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        found, missing = self._call("describe", task_arns=task_arns)
        return found, missing

    def _call(self, method: str, **args: Any) -> Any:
        body = json.dumps(args, default=json_default).encode()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_SECONDS)
        try:
            conn.request("POST", PATH + method, body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            reply = json.loads(resp.read() or b"{}")
        finally:
            conn.close()
        if resp.status == http.client.OK:
            return reply.get("result")
        error = _KNOWN_ERRORS.get(str(reply.get("__type")))
        message = str(reply.get("message", ""))
        if error is not None:
            raise error(message)
        # Whether a launch started anything is then unknown: the scheduler treats it so.
        raise RuntimeError(f"the stack's launcher answered {method} with {resp.status}: {message}")


def answer(launcher: TaskLauncher, method: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """One call of a RemoteLauncher: (HTTP status, reply)."""
    try:
        args = json.loads(body or b"{}")
        if not isinstance(args, dict):
            raise TypeError("the call's arguments must be a JSON object")
        result: Any = None
        if method == "launch":
            result = launcher.launch(LaunchRequest(**args["request"]))
        elif method == "stop":
            launcher.stop(str(args["task_arn"]), str(args["reason"]))
        elif method == "attempts_on_instance":
            result = launcher.attempts_on_instance(str(args["instance_id"]), list(args["clusters"]))
        elif method == "describe":
            result = launcher.describe([str(a) for a in args["task_arns"]])
        else:
            return 404, {"__type": "ClientException", "message": f"the launcher has no method {method!r}"}
    except (ValueError, TypeError, KeyError) as e:
        return 400, {"__type": "ClientException", "message": f"{method}: bad arguments: {e!r}"}
    except (CapacityUnavailable, LaunchFailed) as e:
        return 409, {"__type": type(e).__name__, "message": str(e)}
    return 200, {"result": result}

