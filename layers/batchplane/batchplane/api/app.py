"""Routes of the Batch API. Every domain error is mapped once, to AWS Batch's error shape."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

from ..errors import BatchError, ClientException, ServerException
from ..service.jobs import request_key
from ..wiring import Services, services
from . import extensions, validation

logger = Logger(child=True)


class _Resolver(APIGatewayRestResolver):
    """powertools keeps the event being resolved in a class attribute
    (``BaseRouter.current_event``), which is safe on Lambda (one event per process at a
    time) but not when one process resolves events on several threads, as local mode's
    threaded front port does: a request could read another request's body. Resolving one
    event at a time keeps every request to its own event."""

    _lock = threading.Lock()

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        with self._lock:
            response = super().resolve(event, context)
        return _with_request_id(response, event)

    @contextlib.contextmanager
    def unlocked(self) -> Iterator[None]:
        """Let other requests resolve while this one does its work (the store, the
        launcher), which needs nothing of the resolver; its event and context are put back
        before powertools builds the response. One lock for whole requests held local mode
        to one request at a time: 10 requests/s at 50 clients."""
        saved = BaseRouter.current_event, BaseRouter.lambda_context, dict(self.context)
        self._lock.release()
        try:
            yield
        finally:
            self._lock.acquire()
            BaseRouter.current_event, BaseRouter.lambda_context = saved[0], saved[1]
            self.context.clear()
            self.context.update(saved[2])


REQUEST_ID_HEADER = "x-amzn-RequestId"


def _with_request_id(response: dict[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """Every answer, success or error, names its request as AWS does: boto3 reads
    ``ResponseMetadata.RequestId`` from x-amzn-RequestId. The id is API Gateway's own
    (requestContext.requestId), which its access logs and the handler's logs also carry."""
    request_id = (event.get("requestContext") or {}).get("requestId") or str(uuid.uuid4())
    if "multiValueHeaders" in response:  # the REST API (v1) proxy shape powertools answers
        response["multiValueHeaders"] = {**(response["multiValueHeaders"] or {}), REQUEST_ID_HEADER: [request_id]}
    else:
        response["headers"] = {**(response.get("headers") or {}), REQUEST_ID_HEADER: request_id}
    return response


app = _Resolver(strip_prefixes=["/prod"])
app.include_router(extensions.router)  # triggers and schedules: /v1/batchplane/*

MAX_BODY = 1024 * 1024  # bytes; API Gateway allows 10 MiB but no Batch request needs that

Operation = Callable[[Services, dict[str, Any]], dict[str, Any]]

OPERATIONS: dict[str, Operation] = {
    "CreateComputeEnvironment": lambda s, b: s.compute_environments.create(b),
    "DescribeComputeEnvironments": lambda s, b: s.compute_environments.describe(b),
    "UpdateComputeEnvironment": lambda s, b: s.compute_environments.update(b),
    "DeleteComputeEnvironment": lambda s, b: s.compute_environments.delete(b),
    "CreateJobQueue": lambda s, b: s.job_queues.create(b),
    "DescribeJobQueues": lambda s, b: s.job_queues.describe(b),
    "UpdateJobQueue": lambda s, b: s.job_queues.update(b),
    "DeleteJobQueue": lambda s, b: s.job_queues.delete(b),
    "RegisterJobDefinition": lambda s, b: s.job_definitions.register(b),
    "DescribeJobDefinitions": lambda s, b: s.job_definitions.describe(b),
    "DeregisterJobDefinition": lambda s, b: s.job_definitions.deregister(b),
    "CreateSchedulingPolicy": lambda s, b: s.scheduling_policies.create(b),
    "DescribeSchedulingPolicies": lambda s, b: s.scheduling_policies.describe(b),
    "ListSchedulingPolicies": lambda s, b: s.scheduling_policies.list(b),
    "UpdateSchedulingPolicy": lambda s, b: s.scheduling_policies.update(b),
    "DeleteSchedulingPolicy": lambda s, b: s.scheduling_policies.delete(b),
}
# Operations on jobs, which a job queue may keep to the identity that submitted them
# (domain.tenancy): they are given the caller.
JOB_OPERATIONS: dict[str, Callable[[Services, dict[str, Any], str], dict[str, Any]]] = {
    "DescribeJobs": lambda s, b, c: s.jobs.describe(b, caller=c),
    "ListJobs": lambda s, b, c: s.jobs.list(b, caller=c),
    "CancelJob": lambda s, b, c: s.jobs.cancel(b, caller=c),
    "TerminateJob": lambda s, b, c: s.jobs.cancel(b, terminate=True, caller=c),
    "GetJobQueueSnapshot": lambda s, b, c: s.jobs.snapshot(b, caller=c),
}
PATHS = dict(validation.operation_names().items())


def _body() -> dict[str, Any]:
    raw = app.current_event.body or ""
    if len(raw) > MAX_BODY:
        raise ClientException(f"The request body is {len(raw)} bytes; the limit is {MAX_BODY}.")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise ClientException(f"The request body is not valid JSON: {e}.") from e
    except RecursionError as e:  # e.g. 5000 nested "[": json.loads gives up on the stack
        raise ClientException("The request body nests JSON too deeply for a Batch request.") from e
    if not isinstance(body, dict):
        raise ClientException("The request body must be a JSON object.")
    return body


def _caller() -> str:
    identity = app.current_event.request_context.identity
    return identity.user_arn or identity.access_key or identity.caller or "anonymous"


@app.post("/v1/<operation>")
def batch_operation(operation: str) -> dict[str, Any]:
    name = PATHS.get(operation.lower())
    if name is None:
        raise ClientException(f"Unknown operation /v1/{operation}.")
    body = _body()
    validation.check(name, body)
    if name == "SubmitJob":
        key = request_key(
            _caller(), app.current_event.headers.get("amz-sdk-invocation-id"), app.current_event.body or ""
        )
        with app.unlocked():
            return services().jobs.submit(body, request_key=key, caller=_caller())
    if name in JOB_OPERATIONS:
        with app.unlocked():
            return JOB_OPERATIONS[name](services(), body, _caller())
    handler = OPERATIONS.get(name)
    if handler is None:
        raise ClientException(f"{name} is not supported by batchplane.")
    with app.unlocked():
        return handler(services(), body)


@app.get("/v1/tags/<arn>")
def list_tags(arn: str) -> dict[str, Any]:
    return services().tags.list(unquote(arn))


@app.post("/v1/tags/<arn>")
def tag_resource(arn: str) -> dict[str, Any]:
    body = _body()
    validation.check("TagResource", {"resourceArn": unquote(arn), **body})
    return services().tags.tag(unquote(arn), body.get("tags"))


@app.delete("/v1/tags/<arn>")
def untag_resource(arn: str) -> dict[str, Any]:
    params = app.current_event.multi_value_query_string_parameters or {}
    return services().tags.untag(unquote(arn), params.get("tagKeys") or [])


@app.not_found
def not_found(_: Exception) -> Response:
    return _error(ClientException(f"No operation at {app.current_event.http_method} {app.current_event.path}."))


@app.exception_handler(BatchError)
def batch_error(e: BatchError) -> Response:
    return _error(e)


@app.exception_handler(UnicodeEncodeError)
def unencodable(e: UnicodeEncodeError) -> Response:  # noqa: ARG001 - powertools hands an exception handler the exception
    """JSON may escape half of a UTF-16 surrogate pair ("\\ud800"), which no UTF-8 text
    holds: a name or id with one cannot even be looked up in the embedded store. The
    checks of the fields that must be text name the field first; this is for the rest."""
    where = _surrogate_path(_body_or_none())
    return _error(ClientException(
        f"{where or 'The request'} holds an unpaired UTF-16 surrogate (an escape in \\ud800-\\udfff "
        "without its pair): Batch strings must be valid Unicode text."))


def _body_or_none() -> Any:
    try:
        return json.loads(app.current_event.body or "{}")
    except (ValueError, RecursionError):
        return None


def _surrogate_path(value: Any, path: str = "") -> str | None:
    """Where in ``value`` the first string that cannot be UTF-8 is (``a.b[2]``)."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return path or "the body"
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        if isinstance(key, str) and _surrogate_path(key) is not None:
            return f"a key in {path or 'the body'}"
        found = _surrogate_path(inner, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key)
        if found:
            return found
    return None


@app.exception_handler(Exception)
def server_error(e: Exception) -> Response:  # noqa: ARG001 - powertools hands an exception handler the exception
    logger.exception("unhandled error")
    return _error(ServerException("The service hit an internal error; retry the request."))


def _error(e: BatchError) -> Response:
    return Response(
        status_code=e.status,
        content_type="application/json",
        body=json.dumps({"__type": e.code, "message": e.message}),
        headers={"x-amzn-errortype": e.code},
    )
