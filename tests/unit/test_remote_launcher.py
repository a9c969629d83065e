"""local/remote_launcher.answer: what the stack's internal port replies to a worker's
launcher call, the errors a caller acts on kept by name."""

from __future__ import annotations

from typing import Any

from batchplane.local.remote_launcher import answer
from batchplane.ports import CapacityUnavailable, LaunchFailed


class _Launcher:
    """A launcher that records its calls and raises what it is given."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[str, Any]] = []

    def launch(self, request: Any) -> str:
        self.calls.append(("launch", request))
        if self.error:
            raise self.error
        return "arn:task"

    def stop(self, task_arn: str, reason: str) -> None:
        self.calls.append(("stop", (task_arn, reason)))

    def attempts_on_instance(self, instance_id: str, clusters: list[str]) -> list[tuple[str, int]]:
        return [("job", 2)] if instance_id == "i-1" and clusters == ["c"] else []

    def describe(self, task_arns: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        return [], task_arns


REQUEST = b'{"request": {"job": {"jobId": "j"}, "attempt": 1, "run": 1, "queue_name": "q", "compute_environment": {}}}'


def test_each_method_is_answered_with_its_result() -> None:
    launcher = _Launcher()
    assert answer(launcher, "launch", REQUEST) == (200, {"result": "arn:task"})  # type: ignore[arg-type]
    assert launcher.calls[0][1].job == {"jobId": "j"} and launcher.calls[0][1].environment == {}
    assert answer(launcher, "stop", b'{"task_arn": "t", "reason": "r"}') == (200, {"result": None})  # type: ignore[arg-type]
    assert launcher.calls[1] == ("stop", ("t", "r"))
    assert answer(launcher, "attempts_on_instance", b'{"instance_id": "i-1", "clusters": ["c"]}') == (  # type: ignore[arg-type]
        200, {"result": [("job", 2)]})
    assert answer(launcher, "describe", b'{"task_arns": ["a"]}') == (200, {"result": ([], ["a"])})  # type: ignore[arg-type]


def test_what_a_caller_acts_on_is_sent_back_by_name() -> None:
    for error in (CapacityUnavailable("no room"), LaunchFailed("refused")):
        status, reply = answer(_Launcher(error), "launch", REQUEST)  # type: ignore[arg-type]
        assert (status, reply) == (409, {"__type": type(error).__name__, "message": str(error)})


def test_a_bad_call_is_a_4xx() -> None:
    assert answer(_Launcher(), "reboot", b"{}")[0] == 404  # type: ignore[arg-type]
    for body in (b"[]", b"{", b'{"task_arn": "t"}', b'{"request": {"job": {}}}'):
        method = "stop" if b"task_arn" in body else "launch"
        status, reply = answer(_Launcher(), method, body)  # type: ignore[arg-type]
        assert status == 400 and reply["__type"] == "ClientException", (body, reply)
