"""Fuzzing the local stack's front port from botocore's model of the Batch API (every
operation: types, bounds, nesting, unicode, huge strings) and with raw HTTP (bad JSON,
wrong methods, unknown paths, bad headers, 1 MiB+ bodies), on a fixed seed.

Every request is signed by a key the stack knows (the stack verifies SigV4 on the Batch
API; a fuzzer that only ever saw 403 would test nothing): all but the few meant to be
refused must get past authentication. Every answer is below 500, every 4xx carries an
error type and a message, no request hangs (each must be answered within HANG_SECONDS),
and the stack still runs a job afterwards. ``python -m bench.fuzz --seed S --per-operation N`` runs longer.
(tests/e2e/test_errors.py's sweep sends fixed garbage to every operation; this one
generates from the model's shapes and bounds.)"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from batchplane.local.stack import LocalStack
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ..e2e.support import ACCESS_KEY, HELLO, REGION, SECRET_KEY, ec2_resources, make_client, uniq
from .generate import JOB_TARGET, NAMES, Generator, Request

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e
SEED = 20261203
PER_OPERATION = int(os.environ.get("FUZZ_PER_OPERATION", "60"))
HANG_SECONDS = 20.0


# The error types of a request the stack refused before the API saw it (see sigv4.verify).
REFUSALS = frozenset({"MissingAuthenticationTokenException", "IncompleteSignatureException",
                      "UnrecognizedClientException", "InvalidSignatureException"})


@dataclass
class Outcome:
    request: Request
    status: int | None  # None: no answer within HANG_SECONDS (or the connection broke)
    headers: dict[str, str]
    body: bytes
    error: str = ""

    @property
    def refused(self) -> bool:
        """Refused by authentication (a 403 of sigv4's), not answered by the API."""
        return self.status == 403 and self.headers.get("x-amzn-errortype") in REFUSALS


@dataclass
class Report:
    sent: int
    problems: list[str]
    statuses: dict[int, int]  # 0: no answer
    refused: list[Request]  # refused by authentication

    @property
    def authenticated(self) -> int:
        return self.sent - len(self.refused)

    def summary(self) -> str:
        return (f"{self.sent} requests, {self.authenticated} past authentication, "
                f"statuses {dict(sorted(self.statuses.items()))}, {len(self.problems)} problems")


_SIGNER = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "batch", REGION)


def signed(endpoint: str, method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
    """The headers with a SigV4 signature for ``batch`` by the stack's key, as boto3 signs
    (a request that brings its own Authorization keeps it)."""
    headers = {"Content-Type": "application/json", **headers}
    if "Authorization" in headers:
        return headers
    request = AWSRequest(method=method, url=endpoint + path, data=body, headers=headers)
    try:
        _SIGNER.add_auth(request)
    except (ValueError, UnicodeError):  # a path botocore cannot canonicalize: sent unsigned
        return headers
    return dict(request.headers.items())


def send(endpoint: str, request: Request) -> Outcome:
    method, path, headers, body, _ = request
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=HANG_SECONDS)
    try:
        conn.request(method, path, body=body, headers=signed(endpoint, method, path, headers, body))
        resp = conn.getresponse()
        return Outcome(request, resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    except TimeoutError as e:
        return Outcome(request, None, {}, b"", f"hang: {e}")
    except (ConnectionError, http.client.HTTPException) as e:
        # The server may close a connection on a request it refuses before reading it all
        # (an over-long body); that is an answer only if a status line came first.
        return Outcome(request, -1, {}, b"", f"{type(e).__name__}: {e}")
    finally:
        conn.close()


def problem(o: Outcome) -> str | None:
    method, path, _, body, label = o.request
    where = f"{label} {method} {path[:80]} {body[:100]!r}"
    if o.status is None:
        return f"hang: {where}"
    if o.status == -1:
        return None if len(body) >= (1 << 20) else f"connection broke ({o.error}): {where}"
    if "Authorization" in o.request[2] and not o.refused:
        return f"{o.status}: a bad Authorization got past authentication: {where}"
    if o.status >= 500:
        return f"{o.status}: {where} -> {o.body[:300]!r}"
    if o.status >= 400 and method != "HEAD":
        try:
            answer = json.loads(o.body)
        except ValueError:
            return f"{o.status} without a JSON body: {where} -> {o.body[:200]!r}"
        message = answer.get("message") or answer.get("Message") if isinstance(answer, dict) else None
        kind = o.headers.get("x-amzn-errortype") or (answer.get("__type") if isinstance(answer, dict) else None)
        if not kind or not message:
            return f"{o.status} without an error type and message: {where} -> {o.body[:200]!r}"
    return None


def fuzz(endpoint: str, seed: int, per_operation: int, workers: int = 8) -> Report:
    """Send the generated requests; the count by status, the problems, and the requests
    authentication refused."""
    gen = Generator(seed)
    requests: list[Request] = [*gen.operation_requests(per_operation), *gen.mutated_requests(per_operation),
                               *gen.leaf_requests(), *gen.extension_requests(), *gen.raw_requests()]
    report = Report(len(requests), [], {}, [])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for o in pool.map(lambda r: send(endpoint, r), requests):
            report.statuses[o.status or 0] = report.statuses.get(o.status or 0, 0) + 1
            if o.refused:
                report.refused.append(o.request)
            p = problem(o)
            if p:
                report.problems.append(p)
    return report


def function_errors(stack: LocalStack) -> Counter[str]:
    """How many times each of the stack's functions has failed. A request the API took
    may break a function that reads it later (the scheduler, the stream's handlers): the
    fuzzer's jobs stay RUNNABLE (their environment is DISABLED) but the scheduler still
    weighs every one of them each round."""
    assert stack.router is not None
    return Counter({name: fn.errors for name, fn in stack.router.functions.items()})


def scheduling_round(stack: LocalStack) -> None:
    """The scheduler's tick, now, with the fuzzer's queue enabled again (the fuzzer may
    have disabled it): a round over the jobs it left; a failure is counted by
    function_errors."""
    batch = make_client("batch", stack.endpoint)
    batch.update_job_queue(jobQueue=NAMES[1], state="ENABLED")
    with contextlib.suppress(Exception):
        stack.tick()


def meant_to_be_refused(request: Request) -> bool:
    """A request that brings its own (bad) Authorization, or whose path botocore cannot
    sign: the stack must refuse it, so it never reaches the API."""
    method, path, headers, body, _ = request
    return "Authorization" in headers or "Authorization" not in signed("http://h", method, path, headers, body)


def prepare(batch: Any) -> None:
    """The names the generator uses for resources that exist: a held environment (it
    stays DISABLED, so that fuzzed jobs never run), a queue, a definition."""
    batch.create_compute_environment(computeEnvironmentName=NAMES[0], type="MANAGED", state="DISABLED",
                                     computeResources=ec2_resources(maxvCpus=1))
    batch.create_job_queue(jobQueueName=NAMES[1], priority=1, state="ENABLED",
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": NAMES[0]}])
    batch.register_job_definition(jobDefinitionName=NAMES[2], type="container",
                                  containerProperties={"image": "busybox", "command": ["true"],
                                                       "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                                                {"type": "MEMORY", "value": "64"}]})


def still_runs_a_job(batch: Any, timeout: float = 90.0) -> str:
    """A fresh environment, queue and definition, and one job to SUCCEEDED."""
    ce, q, jd = uniq("after-ce"), uniq("after-q"), uniq("after-def")
    batch.create_compute_environment(computeEnvironmentName=ce, type="MANAGED", computeResources=ec2_resources())
    batch.create_job_queue(jobQueueName=q, priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}])
    batch.register_job_definition(jobDefinitionName=jd, type="container",
                                  containerProperties={"image": "busybox", "command": HELLO,
                                                       "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                                                {"type": "MEMORY", "value": "64"}]})
    job = batch.submit_job(jobName="after-fuzz", jobQueue=q, jobDefinition=jd)["jobId"]
    deadline = time.monotonic() + timeout
    status = "?"
    while time.monotonic() < deadline:
        status = batch.describe_jobs(jobs=[job])["jobs"][0]["status"]
        if status in ("SUCCEEDED", "FAILED"):
            return status
        time.sleep(0.2)
    return status


def local_stack() -> LocalStack:
    """A stack that knows the key the fuzzer signs with (and no other)."""
    return LocalStack(port=0, credentials={ACCESS_KEY: SECRET_KEY})


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with local_stack() as s:
        prepare(make_client("batch", s.endpoint))
        yield s


def test_fuzzed_requests_get_4xx_never_5xx_or_a_hang_and_the_stack_still_runs_jobs(stack: LocalStack) -> None:
    batch = make_client("batch", stack.endpoint)
    started, errors = time.monotonic(), function_errors(stack)
    report = fuzz(stack.endpoint, SEED, PER_OPERATION)
    scheduling_round(stack)
    failed = +(function_errors(stack) - errors)
    print(f"fuzz: {report.summary()} in {time.monotonic() - started:.0f}s, functions failed {dict(failed)}")
    assert report.sent >= 2500
    # The requests reached the API: only those meant to be refused were.
    wrongly = [r for r in report.refused if not meant_to_be_refused(r)]
    assert not wrongly, f"{len(wrongly)} signed requests refused, e.g. {[(r[4], r[1][:60]) for r in wrongly[:5]]}"
    assert report.authenticated >= 0.95 * report.sent, report.summary()
    assert not report.problems, (f"{len(report.problems)} of {report.sent} requests went wrong:\n"
                                 + "\n".join(report.problems[:40]))
    assert report.statuses.get(0, 0) == 0  # no hangs
    assert not failed, f"functions failed on what the fuzzer's requests left: {dict(failed)}"
    started = time.monotonic()
    assert still_runs_a_job(batch) == "SUCCEEDED"
    print(f"a job afterwards: SUCCEEDED in {time.monotonic() - started:.1f}s")


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/describejobs", {"jobs": ["\ud800"]}),
    ("/v1/describejobqueues", {"jobQueues": ["q\udfff"]}),
    ("/v1/canceljob", {"jobId": "\ud835", "reason": "x"}),
    ("/v1/updatecomputeenvironment", {"computeEnvironment": "\ud800\ud800", "state": "ENABLED"}),
    ("/v1/submitjob", {"jobName": "a", "jobQueue": "fz-q\ud800", "jobDefinition": "fz-def"}),
], ids=["describejobs", "describejobqueues", "canceljob", "updatecomputeenvironment", "submitjob"])
def test_an_unpaired_surrogate_is_a_client_exception(stack: LocalStack, path: str, body: dict[str, Any]) -> None:
    """JSON can escape half of a UTF-16 pair (\\ud800), which no UTF-8 text holds: the
    embedded store could not encode such a name and answered 500 (found by the fuzzer)."""
    o = send(stack.endpoint, ("POST", path, {}, json.dumps(body).encode(), "surrogate"))
    assert o.status == 400, (o.status, o.body[:300])
    answer = json.loads(o.body)
    assert answer["__type"] == "ClientException"
    field = next(k for k, v in body.items() if _unencodable(v))
    assert "surrogate" in answer["message"] and field in answer["message"], answer


def _unencodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


_CONTAINER = {"image": "busybox", "command": ["true"],
              "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]}
_FARGATE = {**_CONTAINER, "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
            "resourceRequirements": [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "9" * 400}]}


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/registerjobdefinition", {"jobDefinitionName": "fz-big-vcpus", "type": "container",
                                   "containerProperties": {**_CONTAINER, "vcpus": 10**309}},
     "containerProperties.vcpus"),
    ("/v1/registerjobdefinition", {"jobDefinitionName": "fz-big-memory", "type": "container",
                                   "containerProperties": {**_CONTAINER, "memory": 10**309}},
     "containerProperties.memory"),
    ("/v1/registerjobdefinition", {"jobDefinitionName": "fz-big-fargate", "type": "container",
                                   "platformCapabilities": ["FARGATE"], "containerProperties": _FARGATE},
     "MEMORY value"),
    ("/v1/submitjob", {"jobName": "big", "jobQueue": "fz-q", "jobDefinition": "fz-def",
                       "containerOverrides": {"vcpus": 10**309}}, "containerOverrides.vcpus"),
], ids=["vcpus", "memory", "fargate-memory", "override-vcpus"])
def test_a_number_past_float_is_a_client_exception(stack: LocalStack, path: str, body: dict[str, Any],
                                                   field: str) -> None:
    """10**309 is a JSON number that float() cannot take, and "9" * 400 MiB one it makes
    inf: both answered 500 (found by the fuzzer's mutated requests)."""
    o = send(stack.endpoint, ("POST", path, {}, json.dumps(body).encode(), "big number"))
    assert o.status == 400, (o.status, o.body[:300])
    answer = json.loads(o.body)
    assert answer["__type"] == "ClientException" and field in answer["message"], answer


@pytest.mark.parametrize("kind", ["VCPU", "MEMORY"])
def test_a_job_asking_for_infinite_resources_is_refused_and_the_queue_runs_on(stack: LocalStack, kind: str) -> None:
    """A resourceRequirements value of 400 nines is a plain decimal, which float() makes
    inf: SubmitJob took the job and then every scheduling round of its queue failed on it,
    so the job after it stayed RUNNABLE for good (found by the fuzzer)."""
    batch = make_client("batch", stack.endpoint)
    ce, q, jd = uniq("inf-ce"), uniq("inf-q"), uniq("inf-def")
    batch.create_compute_environment(computeEnvironmentName=ce, type="MANAGED", computeResources=ec2_resources())
    batch.create_job_queue(jobQueueName=q, priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}])
    batch.register_job_definition(jobDefinitionName=jd, type="container",
                                  containerProperties={**_CONTAINER, "command": HELLO})
    body = {"jobName": "infinite", "jobQueue": q, "jobDefinition": jd,
            "containerOverrides": {"resourceRequirements": [{"type": kind, "value": "9" * 400}]}}
    o = send(stack.endpoint, ("POST", "/v1/submitjob", {}, json.dumps(body).encode(), "infinite"))
    assert o.status == 400, (o.status, o.body[:300])
    assert f"{kind} value must be at most" in json.loads(o.body)["message"]
    job = batch.submit_job(jobName="after-infinite", jobQueue=q, jobDefinition=jd)["jobId"]
    deadline = time.monotonic() + 60
    while (status := batch.describe_jobs(jobs=[job])["jobs"][0]["status"]) not in ("SUCCEEDED", "FAILED"):
        assert time.monotonic() < deadline, f"the job after it is still {status}"
        time.sleep(0.2)
    assert status == "SUCCEEDED"


@pytest.mark.parametrize(("operation", "body", "words"), [
    ("createschedule", {"scheduleName": "fz-rate", "scheduleExpression": "rate(" + "9" * 400 + " minutes)",
                        **JOB_TARGET},
     "is a period of more than 100 years"),
    ("createschedule", {"scheduleName": "fz-zone", "scheduleExpression": "rate(5 minutes)",
                        "scheduleExpressionTimezone": "a" * 5000, **JOB_TARGET}, "is not a time zone"),
    ("describeschedules", {"nextToken": 5}, "nextToken must be a string"),
    ("describetriggers", {"nextToken": True}, "nextToken must be a string"),
    ("createtrigger", {"triggerName": "fz-overrides", "bucket": "fz-bucket", **JOB_TARGET,
                       "containerOverrides": {"vcpus": 10**309}}, "containerOverrides.vcpus must be between"),
], ids=["rate", "time-zone", "schedules-token", "triggers-token", "trigger-overrides"])
def test_batchplane_operations_answer_bad_input_with_a_client_exception(stack: LocalStack, operation: str,
                                                                        body: dict[str, Any], words: str) -> None:
    """Each answered 500, or (the overrides) was taken and refused at every job it
    submitted (found by the fuzzer's extension requests)."""
    o = send(stack.endpoint, ("POST", f"/v1/batchplane/{operation}", {}, json.dumps(body).encode(), operation))
    assert o.status == 400, (o.status, o.body[:300])
    answer = json.loads(o.body)
    assert answer["__type"] == "ClientException" and words in answer["message"], answer
