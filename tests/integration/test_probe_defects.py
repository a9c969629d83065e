"""Issue 17 (defects found by probing), the sub-points about the deployed definition and
the handlers that other integration tests leave without a test:

- item 3: every stream mapping has an on-failure destination for the records it drops;
- item 4: every Task of the array fan-out machine has a timeout longer than the function
  it runs, and every step's failure is caught into the step that records it on the parent;
- item 6: a crafted nextToken on DescribeJobQueues, DescribeComputeEnvironments,
  DescribeJobDefinitions and ListSchedulingPolicies is a ClientException on the DynamoDB
  adapter, the one that runs on AWS (the e2e stack runs the embedded store).
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import pytest
from batchplane.local.template import Template

from .conftest import ROOT, api_call

if TYPE_CHECKING:
    from collections.abc import Iterator

    from batchplane.local.router import Function

# -- item 3 ------------------------------------------------------------------------------------


def test_every_stream_mapping_has_an_on_failure_destination() -> None:
    """A record a mapping gives up on (after MaximumRetryAttempts, or aged out of the
    stream) is noted somewhere instead of dropped without a trace."""
    template = Template.load(ROOT / "template.yaml")
    mappings = []
    for logical_id, resource in template.resources.items():
        for event_name, event in ((resource.get("Properties") or {}).get("Events") or {}).items():
            if event.get("Type") in ("DynamoDB", "Kinesis"):
                mappings.append(f"{logical_id}.{event_name}")
                on_failure = ((event["Properties"].get("DestinationConfig") or {}).get("OnFailure") or {})
                assert on_failure.get("Destination"), f"{logical_id}.{event_name} has no OnFailure destination"
                assert on_failure.get("Type") in ("SQS", "SNS", "S3"), (logical_id, event_name, on_failure)
    assert sorted(mappings) == ["PublisherFunction.TableStream", "SchedulerFunction.TableStream"]


# -- item 4 ------------------------------------------------------------------------------------


def _tasks(states: dict[str, Any], where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state["Type"] == "Task":
            yield f"{where}{name}", state
        for inner in ("ItemProcessor", "Iterator"):
            if inner in state:
                yield from _tasks(state[inner]["States"], f"{where}{name}/")
        for i, branch in enumerate(state.get("Branches", [])):
            yield from _tasks(branch["States"], f"{where}{name}[{i}]/")


def test_every_task_of_the_fan_out_has_a_timeout_and_every_failure_is_recorded_on_the_parent() -> None:
    template = Template.load(ROOT / "template.yaml")
    asl = json.loads((ROOT / "statemachines" / "array.asl.json").read_text())
    function_timeout = template.resources["ArraysFunction"]["Properties"]["Timeout"]
    tasks = dict(_tasks(asl["States"]))
    assert {"Chunks/Chunk", "Settle", "Failed"} <= set(tasks)
    for name, task in tasks.items():
        # A task that never answers fails instead of holding the execution (and the
        # parent, and its fixed execution name) for the service's year.
        assert task.get("TimeoutSeconds"), f"{name} has no TimeoutSeconds"
        assert task["TimeoutSeconds"] > function_timeout, (name, task["TimeoutSeconds"], function_timeout)

    # The step that records it: the arrays function with phase "failed".
    failed = asl["States"]["Failed"]
    assert failed["Parameters"]["Payload"]["phase"] == "failed"
    assert failed["Parameters"]["Payload"]["error.$"] == "$.error"
    assert asl["States"][failed["Next"]]["Type"] == "Fail"

    # Whatever fails after its retries goes there: the Map (so any chunk) and Settle.
    top = {n: s for n, s in asl["States"].items() if n != "Failed" and s["Type"] in ("Task", "Map", "Parallel")}
    assert set(top) == {"Chunks", "Settle"}
    for name, state in top.items():
        catches = [c for c in state.get("Catch", []) if "States.ALL" in c["ErrorEquals"]]
        assert catches, f"{name} catches no error"
        assert catches[0]["Next"] == "Failed" and catches[0]["ResultPath"] == "$.error", (name, catches)
    # The chunks' own failures reach the Map's Catch: nothing inside the Map ends it quietly.
    chunk = tasks["Chunks/Chunk"]
    assert chunk.get("End") and not chunk.get("Catch"), chunk


# -- item 6 ------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


_CRAFTED = {
    "deep JSON list": _b64(b"[" * 5000),
    "deep JSON object": _b64(b'{"a":' * 5000),
    "not base64": "!!!???",
    "not UTF-8": _b64(b"\xff\xfe["),
    "a JSON number": _b64(b"12"),
    "a start key without all its attributes": _b64(json.dumps({"pk": {"S": "CE#a"}}).encode()),
    "a start key of empty strings": _b64(json.dumps(
        {"pk": {"S": ""}, "sk": {"S": ""}, "gsi1pk": {"S": ""}, "gsi1sk": {"S": ""}}).encode()),
    "a start key of numbers": _b64(json.dumps(
        {"pk": {"N": "1"}, "sk": {"N": "1"}, "gsi1pk": {"N": "1"}, "gsi1sk": {"N": "1"}}).encode()),
    "a start key with a lone surrogate": _b64(json.dumps(
        {"pk": {"S": "CE#\ud800"}, "sk": {"S": "#"}, "gsi1pk": {"S": "CE"}, "gsi1sk": {"S": "\ud800"}}).encode()),
}

_LISTINGS = ("describejobqueues", "describecomputeenvironments", "describejobdefinitions", "listschedulingpolicies")


@pytest.fixture
def listed(functions: dict[str, Function], ec2_environment: dict[str, Any]) -> Function:  # noqa: ARG001 - requested for its side effect (usefixtures does not apply to fixtures)
    """Two of everything the four listings list."""
    api = functions["ApiFunction"]
    assert api_call(api, "createjobqueue", {
        "jobQueueName": "second", "priority": 2,
        "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "ec2"}]})[0] == 200
    status, _ = api_call(api, "createcomputeenvironment", {"computeEnvironmentName": "unmanaged", "type": "UNMANAGED"})
    assert status == 200
    assert api_call(api, "registerjobdefinition", {
        "jobDefinitionName": "other", "type": "container",
        "containerProperties": {"image": "busybox", "command": ["true"], "resourceRequirements": [
            {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}]}})[0] == 200
    for name in ("sp-a", "sp-b"):
        assert api_call(api, "createschedulingpolicy", {"name": name})[0] == 200
    return api


@pytest.mark.parametrize("token", list(_CRAFTED.values()), ids=list(_CRAFTED))
def test_a_crafted_next_token_is_a_client_exception_on_dynamodb(listed: Function, token: str) -> None:
    for operation in _LISTINGS:
        status, out = api_call(listed, operation, {"maxResults": 1, "nextToken": token})
        assert (status, out.get("__type")) == (400, "ClientException"), (operation, status, out)


def test_a_next_token_of_another_listing_is_a_client_exception_on_dynamodb(listed: Function) -> None:
    tokens = {}
    for operation in _LISTINGS:
        status, out = api_call(listed, operation, {"maxResults": 1})
        assert status == 200 and out.get("nextToken"), (operation, status, out)
        tokens[operation] = out["nextToken"]
    for operation in _LISTINGS:
        for other, token in tokens.items():
            if other != operation:
                status, out = api_call(listed, operation, {"maxResults": 1, "nextToken": token})
                assert (status, out.get("__type")) == (400, "ClientException"), (operation, other, status, out)
        status, out = api_call(listed, operation, {"maxResults": 1, "nextToken": tokens[operation]})
        assert status == 200, (operation, out)
