"""Bad input gets HTTP 400 ``ClientException`` with a message naming the problem, over raw
HTTP (hand-written clients) and through boto3; garbage never causes a 5xx."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import botocore.session
import pytest

from .support import Env, Raw, assert_client_error, ec2_resources, uniq
from .test_resources import client_error

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MODEL = botocore.session.get_session().get_service_model("batch")


# -- raw HTTP: the body itself is wrong ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("{not json", ["JSON"]),
        ('{"jobName": "a",', ["JSON"]),
        ("[1, 2]", ["object"]),
        ('"a string"', ["object"]),
        ("42", ["object"]),
        ("null", ["object"]),
        ("true", ["object"]),
    ],
    ids=["not-json", "truncated", "array", "string", "number", "null", "bool"],
)
def test_body_not_a_json_object(raw: Callable[..., Raw], body: str, words: list[str]) -> None:
    for path in ("/v1/submitjob", "/v1/createjobqueue", "/v1/describejobs"):
        assert_client_error(raw(path, body), *words)


def test_oversized_body(raw: Callable[..., Raw], env: Env) -> None:
    huge = json.dumps(
        {
            "jobName": "big",
            "jobQueue": env.queue,
            "jobDefinition": env.jobdef,
            "parameters": {"p": "x" * (2 * 1024 * 1024)},
        }
    )
    assert_client_error(raw("/v1/submitjob", huge), "bytes", "limit")


def test_invalid_utf8_body(raw: Callable[..., Raw]) -> None:
    resp = raw("/v1/submitjob", b'{"jobName": "\xff\xfe"}')
    assert resp.status == 400 and resp.error_type == "ClientException", (resp.status, resp.body)


def test_unknown_operation_and_method(raw: Callable[..., Raw]) -> None:
    assert_client_error(raw("/v1/nosuchoperation", {}), "nosuchoperation")
    resp = raw("/v1/submitjob", method="GET")
    assert 400 <= resp.status < 500 and resp.error_type, (resp.status, resp.headers)


def test_unknown_field_is_named(raw: Callable[..., Raw], env: Env) -> None:
    body = {"jobName": "x", "jobQueue": env.queue, "jobDefinition": env.jobdef, "jobQeueu": "typo"}
    assert_client_error(raw("/v1/submitjob", body), "jobQeueu")


# -- raw HTTP: one field is wrong -------------------------------------------------------


def _queue_body(**overrides: Any) -> dict[str, Any]:
    return {
        "jobQueueName": uniq("q"),
        "priority": 1,
        "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "ce-missing"}],
        **overrides,
    }


def _submit_body(env: Env, **overrides: Any) -> dict[str, Any]:
    return {"jobName": "ok-name", "jobQueue": env.queue, "jobDefinition": env.jobdef, **overrides}


def _register_body(**overrides: Any) -> dict[str, Any]:
    return {
        "jobDefinitionName": uniq("jd"),
        "type": "container",
        "containerProperties": {"image": "busybox", "vcpus": 1, "memory": 64},
        **overrides,
    }


def _ce_body(**overrides: Any) -> dict[str, Any]:
    return {
        "computeEnvironmentName": uniq("ce"),
        "type": "MANAGED",
        "computeResources": ec2_resources(),
        **overrides,
    }


def cases(env: Env) -> Iterator[tuple[str, str, dict[str, Any], list[str]]]:
    """(id, path, body, words the message must contain)."""
    # Unknown resources.
    yield (
        "unknown-queue",
        "/v1/submitjob",
        _submit_body(env, jobQueue="no-such-queue"),
        ["no-such-queue"],
    )
    yield (
        "unknown-jobdef",
        "/v1/submitjob",
        _submit_body(env, jobDefinition="no-such-def"),
        ["no-such-def"],
    )
    yield "unknown-ce-in-queue", "/v1/createjobqueue", _queue_body(), ["ce-missing"]
    # CancelJob/TerminateJob of an unknown job answer 200, as AWS does
    # (test_conformance.py).
    # Bad names.
    yield (
        "bad-ce-name",
        "/v1/createcomputeenvironment",
        _ce_body(computeEnvironmentName="bad name!"),
        ["computeEnvironmentName"],
    )
    yield (
        "bad-queue-name",
        "/v1/createjobqueue",
        _queue_body(jobQueueName="has/slash"),
        ["jobQueueName"],
    )
    yield (
        "bad-job-name",
        "/v1/submitjob",
        _submit_body(env, jobName="-starts-with-dash"),
        ["jobName"],
    )
    yield "long-job-name", "/v1/submitjob", _submit_body(env, jobName="j" * 129), ["jobName", "128"]
    yield (
        "bad-jobdef-name",
        "/v1/registerjobdefinition",
        _register_body(jobDefinitionName="x" * 129),
        ["jobDefinitionName"],
    )
    yield "bad-policy-name", "/v1/createschedulingpolicy", {"name": "no spaces"}, ["name"]
    # Out-of-range values.
    yield "priority-5000", "/v1/createjobqueue", _queue_body(priority=5000), ["priority", "1000"]
    yield "priority-negative", "/v1/createjobqueue", _queue_body(priority=-1), ["priority"]
    yield (
        "maxvcpus-negative",
        "/v1/createcomputeenvironment",
        _ce_body(computeResources=ec2_resources(maxvCpus=-1)),
        ["maxvCpus"],
    )
    yield (
        "retry-11-register",
        "/v1/registerjobdefinition",
        _register_body(retryStrategy={"attempts": 11}),
        ["attempts", "10"],
    )
    yield (
        "retry-11-submit",
        "/v1/submitjob",
        _submit_body(env, retryStrategy={"attempts": 11}),
        ["attempts", "10"],
    )
    yield (
        "retry-0-submit",
        "/v1/submitjob",
        _submit_body(env, retryStrategy={"attempts": 0}),
        ["attempts"],
    )
    yield (
        "timeout-30-register",
        "/v1/registerjobdefinition",
        _register_body(timeout={"attemptDurationSeconds": 30}),
        ["attemptDurationSeconds", "60"],
    )
    yield (
        "timeout-30-submit",
        "/v1/submitjob",
        _submit_body(env, timeout={"attemptDurationSeconds": 30}),
        ["attemptDurationSeconds", "60"],
    )
    yield (
        "scheduling-priority",
        "/v1/registerjobdefinition",
        _register_body(schedulingPriority=10000),
        ["schedulingPriority"],
    )
    yield (
        "compute-reservation",
        "/v1/createschedulingpolicy",
        {"name": uniq("p"), "fairsharePolicy": {"computeReservation": 100}},
        ["computeReservation"],
    )
    yield (
        "reason-too-long",
        "/v1/canceljob",
        {"jobId": "x", "reason": "r" * 1025},
        ["reason", "1024"],
    )
    yield "max-results-0", "/v1/listjobs", {"jobQueue": env.queue, "maxResults": 0}, ["maxResults"]
    yield "describe-101", "/v1/describejobs", {"jobs": [f"id-{i}" for i in range(101)]}, ["100"]
    # Wrong types.
    yield "priority-string", "/v1/createjobqueue", _queue_body(priority="high"), ["priority"]
    yield "job-name-number", "/v1/submitjob", _submit_body(env, jobName=123), ["jobName"]
    yield (
        "overrides-list",
        "/v1/submitjob",
        _submit_body(env, containerOverrides=["echo"]),
        ["containerOverrides"],
    )
    yield (
        "parameter-number",
        "/v1/submitjob",
        _submit_body(env, parameters={"a": 1}),
        ["parameters"],
    )
    yield (
        "command-string",
        "/v1/submitjob",
        _submit_body(env, containerOverrides={"command": "echo hi"}),
        ["command"],
    )
    yield (
        "maxvcpus-string",
        "/v1/createcomputeenvironment",
        _ce_body(computeResources=ec2_resources(maxvCpus="4")),
        ["maxvCpus"],
    )
    yield "tags-list", "/v1/createschedulingpolicy", {"name": uniq("p"), "tags": ["a"]}, ["tags"]
    yield "jobs-string", "/v1/describejobs", {"jobs": "abc"}, ["jobs"]
    yield "priority-float", "/v1/createjobqueue", _queue_body(priority=1.5), ["priority"]
    # Missing required fields.
    yield (
        "submit-no-queue",
        "/v1/submitjob",
        {"jobName": "x", "jobDefinition": env.jobdef},
        ["jobQueue"],
    )
    yield "cancel-no-reason", "/v1/canceljob", {"jobId": "x"}, ["reason"]
    yield "describe-empty", "/v1/describejobs", {}, ["jobs"]


_CASE_IDS = [c[0] for c in cases(Env(*["x"] * 8))]


@pytest.mark.parametrize("case", _CASE_IDS)
def test_bad_field_is_a_client_error(raw: Callable[..., Raw], env: Env, case: str) -> None:
    _, path, body, words = next(c for c in cases(env) if c[0] == case)
    assert_client_error(raw(path, body), *words)


# -- the same through boto3 ---------------------------------------------------------------


def test_boto3_raises_client_exception(batch: Any, env: Env) -> None:
    client_error(
        batch.submit_job,
        "no-such-queue",
        jobName="j",
        jobQueue="no-such-queue",
        jobDefinition=env.jobdef,
    )
    client_error(
        batch.create_job_queue,
        "priority",
        jobQueueName=uniq("q"),
        priority=5000,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env.ec2_ce}],
    )
    client_error(
        batch.create_compute_environment,
        "maxvCpus",
        computeEnvironmentName=uniq("ce"),
        type="MANAGED",
        computeResources=ec2_resources(maxvCpus=-1),
    )
    client_error(
        batch.register_job_definition,
        "attempts",
        jobDefinitionName=uniq("jd"),
        type="container",
        retryStrategy={"attempts": 11},
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 64},
    )
    client_error(
        batch.submit_job,
        "attemptDurationSeconds",
        jobName="j",
        jobQueue=env.queue,
        jobDefinition=env.jobdef,
        timeout={"attemptDurationSeconds": 30},
    )
    client_error(
        batch.create_compute_environment,
        "computeEnvironmentName",
        computeEnvironmentName="bad name",
        type="UNMANAGED",
    )
    client_error(batch.describe_jobs, "100", jobs=[f"id-{i}" for i in range(101)])


def test_nothing_is_created_by_a_rejected_request(batch: Any, env: Env) -> None:
    name = uniq("rejected")
    client_error(
        batch.create_job_queue,
        "priority",
        jobQueueName=name,
        priority=5000,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env.ec2_ce}],
    )
    assert batch.describe_job_queues(jobQueues=[name])["jobQueues"] == []
    client_error(
        batch.register_job_definition,
        "attempts",
        jobDefinitionName=name,
        type="container",
        retryStrategy={"attempts": 11},
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 64},
    )
    assert batch.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"] == []
    # A rejected registration burns no revision number.
    assert (
        batch.register_job_definition(
            jobDefinitionName=name,
            type="container",
            containerProperties={"image": "busybox", "vcpus": 1, "memory": 64},
        )["revision"]
        == 1
    )
    before = batch.list_jobs(jobQueue=env.queue, filters=[{"name": "JOB_NAME", "values": [name]}])
    client_error(
        batch.submit_job,
        "attemptDurationSeconds",
        jobName=name,
        jobQueue=env.queue,
        jobDefinition=env.jobdef,
        timeout={"attemptDurationSeconds": 30},
    )
    after = batch.list_jobs(jobQueue=env.queue, filters=[{"name": "JOB_NAME", "values": [name]}])
    assert before["jobSummaryList"] == after["jobSummaryList"] == []


# -- the sweep: garbage at every operation ---------------------------------------------------

_GARBAGE_BODIES: list[bytes] = [
    b"",
    b"{",
    b"[]",
    b"null",
    b'"s"',
    b"-1e999",
    b"NaN",
    b"\x00\x01\x02",
    b"\xff" * 64,
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b'{"": ""}',
]
_WRONG_VALUES: list[Any] = [
    -1,
    2**64,
    1.5,
    "",
    "\U0001f4a5\u0000",
    "a" * 5000,
    [None],
    {"a": {"b": []}},
    None,
    True,
]
_STRINGS = [
    "",
    "x",
    "*",
    "Ref::x",
    "arn:aws:batch:us-east-1:123456789012:job-queue/",
    "arn:aws:batch:us-east-1:123456789012:job/",
    "a:b:c",
    "name:notanumber",
    "../..",
    "%00",
    "💥",
    "a" * 300,
    " ",
    "ENABLED",
    "RUNNABLE",
    "VCPU",
    "0.25",
]
_INTS = [0, -1, 1, 2**31, 2**53 + 1, 2**64, -(2**64), 10**40]


def _fuzz(shape: Any, rng: random.Random, depth: int = 0) -> Any:
    """A value of the right JSON type for ``shape`` but otherwise arbitrary."""
    kind = shape.type_name
    if kind == "structure":
        if depth > 4:
            return {}
        members = list(shape.members.items())
        chosen = rng.sample(members, k=rng.randint(0, len(members))) if members else []
        return {name: _fuzz(member, rng, depth + 1) for name, member in chosen}
    if kind == "list":
        return [_fuzz(shape.member, rng, depth + 1) for _ in range(rng.choice([0, 1, 2, 3]))]
    if kind == "map":
        return {
            rng.choice(_STRINGS) or "k": _fuzz(shape.value, rng, depth + 1)
            for _ in range(rng.choice([0, 1, 2]))
        }
    if kind == "string":
        enum = shape.enum or []
        return rng.choice(list(enum) + _STRINGS)
    if kind in ("integer", "long"):
        return rng.choice(_INTS)
    if kind in ("float", "double"):
        return rng.choice([0.0, -1.5, 1e-9, 1e300, 999.99995])
    if kind == "boolean":
        return rng.choice([True, False])
    return rng.choice(_STRINGS)


def _sweep_requests() -> Iterator[tuple[str, str, bytes]]:
    """(method, path, body) for every operation in botocore's model of the Batch API."""
    rng = random.Random(20160810)
    for name in MODEL.operation_names:
        op = MODEL.operation_model(name)
        method, uri = op.http["method"], op.http["requestUri"].split("?")[0]
        shape = op.input_shape
        paths = [uri]
        if "{" in uri:
            paths = [
                uri.replace("{resourceArn}", quote(arn, safe=""))
                for arn in (
                    "garbage",
                    "arn:aws:batch:::",
                    "arn:aws:batch:us-east-1:123456789012:job-definition/a:b:c",
                )
            ]
        bodies = list(_GARBAGE_BODIES)
        members = list(shape.members) if shape is not None else []
        for value in _WRONG_VALUES:
            bodies.append(json.dumps(dict.fromkeys(members, value) or {"x": value}).encode())
        for _ in range(8):
            bodies.append(json.dumps(_fuzz(shape, rng)).encode() if shape is not None else b"{}")
        for path in paths:
            for body in bodies:
                yield method, path, body


def test_garbage_never_causes_a_server_error(raw: Callable[..., Raw]) -> None:
    requests = list(_sweep_requests())
    assert len({path for _, path, _ in requests}) >= len(MODEL.operation_names)

    def send(request: tuple[str, str, bytes]) -> tuple[tuple[str, str, bytes], Raw]:
        method, path, body = request
        return request, raw(path, body, method=method)

    problems = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for (method, path, body), resp in pool.map(send, requests):
            if resp.status >= 500:
                problems.append(
                    f"{resp.status} {method} {path} {body[:120]!r} -> {resp.body[:200]!r}"
                )
            elif resp.status >= 400 and (
                resp.error_type is None or "message" not in json.loads(resp.body)
            ):
                problems.append(f"no error type/message: {method} {path} {body[:80]!r}")
    assert not problems, f"{len(problems)} of {len(requests)} requests went wrong:\n" + "\n".join(
        problems[:40]
    )
