"""The front port: the one HTTP port users and jobs are given. Batch API requests (SigV4
scope ``batch``, or the API's /v1/ paths) go to the API function as API Gateway proxy
events; Lambda Invoke of a template function runs it (on the internal port only); every
other request is sent on to the emulator, so one AWS_ENDPOINT_URL serves batch, s3, logs,
events, sqs alike. The refusals that keep jobs and users off the stack's own APIs are here."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from .. import config, sigv4
from ..dashboard import PREFIX as DASHBOARD
from ..dashboard.server import answer as answer_dashboard
from .remote_launcher import PATH as LAUNCHER_PATH
from .remote_launcher import answer as answer_launcher

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .router import Function
    from .stack import LocalStack

log = logging.getLogger(__name__)
_INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations")
_SCOPE = re.compile(r"Credential=[^/&]+/\d{8}/([^/&]+)/([^/&]+)/aws4_request")  # region, service
READ_TIMEOUT_SECONDS = 30  # a request must arrive within this (each read of it)
MAX_FRONT_BODY = 1 << 30  # bytes of one request through the front port (S3 puts included)
_METHODS = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"}
_EMULATOR_CONTROL = "/moto-api"  # moto's own API: dump or reset every backend
# AWS keeps every aws.* source of EventBridge to its services (NotAuthorizedForSourceException),
# and batchplane's functions act on them as the stack's own: an ECS task's state ends an
# attempt, an EC2 Spot warning stops the attempts on an instance, an S3 upload fires a trigger.
_RESERVED_SOURCES = ("aws.",)
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate"}


class ApiFront:
    """The Batch API as the front port serves it, API Gateway's part: a request's SigV4
    signature checked against the stack's access keys, then the API function invoked with
    the request as a proxy event. The stack's process has one; so has a worker process that
    serves the front port (local/worker.py)."""

    def __init__(self, function: Function, keys: dict[str, str], *, any_credentials: bool = False) -> None:
        self.function = function
        self.keys = keys
        self.any_credentials = any_credentials

    def authenticate(self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes) -> str | None:
        """The access key that signed a Batch API request (sigv4.Refusal if none of
        ``keys`` did); None when any credentials are taken."""
        if self.any_credentials:
            return None
        return sigv4.verify(method, target, headers, body, secret_for=self.keys.get,
                            region=config.settings().region, service="batch")

    def call(self, method: str, raw_path: str, headers: dict[str, str],
             body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Hand one HTTP request to the API function as an API Gateway proxy event."""
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query, keep_blank_values=True)
        auth = headers.get("Authorization", "")
        access_key = auth.split("Credential=", 1)[1].split("/", 1)[0] if "Credential=" in auth else None
        text = body.decode("utf-8", "replace")
        event = {
            "resource": "/v1/{proxy+}",
            "path": parts.path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": {"proxy": parts.path.removeprefix("/v1/")},
            "stageVariables": None,
            "requestContext": {
                "resourcePath": "/v1/{proxy+}",
                "httpMethod": method,
                "path": parts.path,
                "stage": "local",
                "requestId": str(uuid.uuid4()),
                "accountId": config.settings().account_id,
                "identity": {"accessKey": access_key, "sourceIp": "127.0.0.1", "caller": access_key,
                             "userArn": None},
            },
            "body": text if text else None,
            "isBase64Encoded": False,
        }
        result = self.function.invoke(event)
        out = result.get("body") or ""
        data = base64.b64decode(out) if result.get("isBase64Encoded") else out.encode()
        resp_headers = dict(result.get("headers") or {})
        for k, v in (result.get("multiValueHeaders") or {}).items():
            resp_headers[k] = v[-1]
        return int(result["statusCode"]), resp_headers, data


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def make_handler(api: ApiFront, upstream_host: str, upstream_port: int, *, stack: LocalStack | None,
                  internal: bool = False) -> type[BaseHTTPRequestHandler]:
    """The front port's handler, which sends what it does not answer itself on to the
    emulator at ``upstream_*``. ``internal``: the port of the stack's own callers, which may
    also invoke the template's functions. Without ``stack`` (a worker process serving the
    front port), it answers the Batch API's requests and sends every other request on to
    the stack's own front port at ``upstream_*``, which answers those as always."""

    class Front(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; without TCP_NODELAY the second waits on
        # the client's delayed ACK (~40 ms a request).
        disable_nagle_algorithm = True
        signer: str | None = None  # the access key of the request in hand, once authenticated

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("front: " + format, *args)

        # A client that stops sending mid-request must not hold a thread for good.
        timeout = READ_TIMEOUT_SECONDS

        def __getattr__(self, name: str) -> Any:
            # Every method reaches _handle, which answers the ones no AWS API uses.
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

        def _stack(self) -> LocalStack:
            """The stack, for the requests only its own front port answers."""
            assert stack is not None
            return stack

        def _body(self) -> bytes:
            """The request's body; _BadRequest when its framing is wrong."""
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                total = 0
                while True:
                    line = self.rfile.readline(1024).strip().split(b";")[0]
                    try:
                        size = int(line, 16)
                    except ValueError:
                        raise _BadRequest(400, f"bad chunk size {line[:20]!r}") from None
                    total += size
                    if size < 0 or total > MAX_FRONT_BODY:
                        raise _BadRequest(413 if size >= 0 else 400, "chunk size out of range")
                    if size == 0:
                        self.rfile.readline(1024)
                        return b"".join(chunks)
                    chunk = self.rfile.read(size)
                    if len(chunk) < size:
                        raise _BadRequest(400, "the body ended inside a chunk")
                    chunks.append(chunk)
                    self.rfile.readline(1024)
            length = self.headers.get("Content-Length") or "0"
            if not length.isdigit():
                raise _BadRequest(400, f"Content-Length {length[:20]!r} is not a number of bytes")
            if int(length) > MAX_FRONT_BODY:
                raise _BadRequest(413, f"the body is over {MAX_FRONT_BODY} bytes")
            data = self.rfile.read(int(length))
            if len(data) < int(length):
                raise _BadRequest(400, "the body is shorter than its Content-Length")
            return data

        def _handle(self) -> None:  # noqa: PLR0912 - the front door's routes: one branch a kind of request, tried in order
            try:
                if self.command not in _METHODS:
                    raise _BadRequest(405, f"method {self.command} is not served here")
                if not self.path.startswith("/"):
                    raise _BadRequest(400, "the request target must be a path starting with /")
                body = self._body()
            except TimeoutError:
                self._fail(408, "the request did not arrive in time")
                return
            except _BadRequest as e:
                self._fail(e.status, e.message)
                return
            # Signed in the Authorization header, or presigned in the query (an S3 URL).
            auth = self.headers.get("Authorization", "") or unquote(urlsplit(self.path).query)
            scope = _SCOPE.search(auth)
            region, service = scope.groups() if scope else (None, None)
            path = urlsplit(self.path).path
            batch_path = path == "/v1" or path.startswith("/v1/")
            if stack is None and (self.path.startswith("/_batchplane/") or not (service == "batch" or batch_path)):
                self._forward(body)
            elif self.path.startswith("/_batchplane/"):
                self._local_control(body)
            elif service is None and not internal and (path == DASHBOARD or path.startswith(DASHBOARD + "/")):
                dashboard = self._stack().dashboard
                assert dashboard is not None
                answer_dashboard(self, dashboard)
            elif not internal and unquote(path).startswith(_EMULATOR_CONTROL):  # moto routes it decoded
                self._refuse("The emulator's control API is not served to users and jobs.")
            elif not internal and service == "events" and self._put_reserved_events(body):
                return
            elif not internal and service == "sqs" and self._names_a_bus_queue(path, body):
                self._refuse("The local bus's queues carry the stack's own events: not served to users and jobs.")
            elif (service == "batch" or batch_path) and not internal and not self._authenticated(body):
                return
            elif batch_path and service not in (None, "batch"):
                self._fail(400, f"{path} is the Batch API: sign the request for the service batch, not {service}")
            elif service is None and not batch_path:
                self._fail(400, f"unsigned request for {path}: sign it for an AWS service (SigV4), "
                                "or use the Batch API's /v1/ paths")
            elif (service == "batch" or batch_path) and region not in (None, config.settings().region):
                # AWS's endpoints are regional; this stack is one region's.
                here = config.settings().region
                self._fail(400, f"this batchplane serves the region {here}, and the request was signed for "
                                f"{region}: set the client's region to {here} (region_name, AWS_REGION or --region)")
            elif service == "lambda" and (invoke := _INVOKE.match(self.path)):
                self._invoke(invoke.group(1), body)
            elif service == "batch" or batch_path:
                try:
                    status, headers, data = api.call(self.command, self.path, dict(self.headers), body)
                except Exception:  # noqa: BLE001 - a crash in the handler is a 500, as on Lambda
                    log.exception("API handler failed")
                    status, headers = 500, {"Content-Type": "application/json", "x-amzn-errortype": "ServerException"}
                    data = b'{"__type": "ServerException", "message": "internal error"}'
                self._reply(status, headers, data)
            else:
                self._forward(body)

        def _authenticated(self, body: bytes) -> bool:
            """Whether the Batch request is signed by a key the stack knows; if not, AWS's
            403 has been answered. ``signer``: the key that signed it (None: any is taken)."""
            try:
                self.signer = api.authenticate(self.command, self.path, self.headers.items(), body)
            except sigv4.Refusal as e:
                data = json.dumps({"__type": e.code, "message": e.message}).encode()
                self._reply(403, {"Content-Type": "application/json", "x-amzn-errortype": e.code}, data)
                return False
            return True

        def _invoke(self, function: str, body: bytes) -> None:
            """Lambda Invoke of one of the template's functions, run in this process."""
            name = unquote(function).rsplit(":", 1)[-1]
            router = self._stack().router
            assert router is not None
            fn = router.functions.get(name)
            if fn is None:
                self._forward(body)
                return
            if not internal:
                # Its events come from the stack itself (ECS, the stream, Step Functions):
                # a forged one could end another job's attempt.
                self._refuse(f"Function {name} is batchplane's own: only the stack invokes it.")
                return
            headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
            try:
                result = fn.invoke(json.loads(body or b"{}"))
                data = json.dumps(result).encode()
            except Exception as e:  # noqa: BLE001 - reported the way Lambda reports it
                headers["X-Amz-Function-Error"] = "Unhandled"
                data = json.dumps({"errorMessage": str(e), "errorType": type(e).__name__}).encode()
            self._reply(200, headers, data)

        def _local_control(self, body: bytes) -> None:
            """Local-only operations (not part of any AWS API): POST /_batchplane/interrupt.
            Signed as a Batch request, by a user's key: a job (which holds the jobs' key)
            must not reclaim the instance under another job. On the internal port, also
            the launcher's calls from a worker process (local/remote_launcher.py)."""
            assert stack is not None
            if internal and self.path.startswith(LAUNCHER_PATH) and self.command == "POST":
                assert stack.launcher is not None
                status, answer = answer_launcher(stack.launcher, self.path.removeprefix(LAUNCHER_PATH), body)
                self._reply(status, {"Content-Type": "application/json"}, json.dumps(answer).encode())
                return
            if not internal and not self._authenticated(body):
                return
            if not internal and self.signer == stack.job_access_key:
                self._refuse("Jobs cannot interrupt instances: sign the request with a user's key.")
                return
            try:
                request = json.loads(body or b"{}")
                if self.path != "/_batchplane/interrupt" or self.command != "POST":
                    raise LookupError(f"no local operation at {self.command} {self.path}")
                instance = stack.interrupt(str(request.get("jobId")))
                status, reply = 200, {"instanceId": instance}
            except (LookupError, ValueError) as e:
                status, reply = 400, {"__type": "ClientException", "message": str(e)}
            self._reply(status, {"Content-Type": "application/json"}, json.dumps(reply).encode())

        def _fail(self, status: int, message: str) -> None:
            """A request this port cannot take: an error in AWS's shape, and the connection
            closed (what is left of a malformed request cannot be read as the next one)."""
            self.close_connection = True
            data = json.dumps({"__type": "ClientException", "message": f"Bad request: {message}."}).encode()
            self._reply(status, {"Content-Type": "application/json", "x-amzn-errortype": "ClientException",
                                 "Connection": "close"}, data)

        def _refuse(self, message: str) -> None:
            data = json.dumps({"__type": "AccessDeniedException", "message": message}).encode()
            self._reply(403, {"Content-Type": "application/json", "x-amzn-errortype": "AccessDeniedException"}, data)

        def _names_a_bus_queue(self, path: str, body: bytes) -> bool:
            """Whether an SQS request names a queue through which the local bus carries an
            EventBridge rule's events to batchplane's functions (a message put there would
            be delivered as an AWS event)."""
            bus = self._stack().bus
            names = [rule.name for rule in (bus.rules if bus else [])]
            text = unquote(path) + " " + unquote(body.decode("utf-8", "replace").replace("+", " "))
            return any(re.search(rf"(?<![A-Za-z0-9_-]){re.escape(n)}(?![A-Za-z0-9_-])", text) for n in names)

        def _put_reserved_events(self, body: bytes) -> bool:
            """PutEvents: an entry of a reserved source fails as AWS fails it, the others are
            put. True when this answered the request."""
            if self.headers.get("X-Amz-Target", "") != "AWSEvents.PutEvents":
                return False
            try:
                request = json.loads(body)
                entries = request["Entries"]
                reserved = [str(e.get("Source", "")).startswith(_RESERVED_SOURCES) for e in entries]
            except (ValueError, KeyError, TypeError, AttributeError):
                return False  # malformed: the emulator answers it
            if not any(reserved):
                return False
            refused = {"ErrorCode": "NotAuthorizedForSourceException", "ErrorMessage": "Not authorized for the source."}
            kept = [e for e, r in zip(entries, reserved, strict=True) if not r]
            answers: list[dict[str, Any]] = []
            status, headers = 200, {"Content-Type": "application/x-amz-json-1.1"}
            if kept:
                status, headers, data = self._send(json.dumps({**request, "Entries": kept}).encode())
                try:
                    answers = json.loads(data)["Entries"] if status == HTTPStatus.OK else []
                except (ValueError, KeyError, TypeError):
                    status = 500
                if status != HTTPStatus.OK or len(answers) != len(kept):
                    self._reply(status, headers, data)
                    return True
            put = iter(answers)
            out = [refused if r else next(put) for r in reserved]
            reply = {"FailedEntryCount": sum("ErrorCode" in e for e in out), "Entries": out}
            self._reply(200, headers, json.dumps(reply).encode())
            return True

        def _forward(self, body: bytes) -> None:
            self._reply(*self._send(body))

        def _send(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
            """The request, with ``body``, sent on to the emulator: its status, headers and body."""
            conn = http.client.HTTPConnection(upstream_host, upstream_port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                out = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP | {"content-length"}}
                return resp.status, out, data
            finally:
                conn.close()

        def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() not in _HOP_BY_HOP | {"content-length"}:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            if not any(k.lower() == "x-amzn-requestid" for k in headers):
                # The front port's own answers (refusals, a crashed handler) have an id too.
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)


    return Front
