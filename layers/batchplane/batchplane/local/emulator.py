"""moto's server, in this process, on loopback.

DynamoDB is linearizable per item: a conditional write either sees the latest version or
fails (see also moto_fixes for TransactWriteItems). moto's server handles requests on
many threads without a lock, so two conditional writes to one item could both pass
their check. The emulator therefore runs DynamoDB
requests one at a time, which is what makes local mode (and its race tests) honest about
"never dispatched twice".
"""

from __future__ import annotations

import contextlib
import copyreg
import http.client
import io
import logging
import pickle
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import botocore.auth
from botocore.auth import BaseSigner
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ClientError, NoCredentialsError
from moto import backends
from moto.core.request import Request, normalize_request
from moto.moto_api._internal.models import moto_api_backend
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import moto_fixes
from .journal import Journal, journaled

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


# The services whose data local mode keeps across a restart (see LocalStack): what jobs,
# users and rules keep there. Not DynamoDB (the control plane's embedded store has its
# own file; --store dynamodb is volatile on purpose) nor Step Functions (the state
# machines are made from template.yaml at start and fan-outs in flight restarted).
SAVED_SERVICES = ("s3", "logs", "sqs", "events", "scheduler", "ecs")  # ecs: the clusters named by ecsClusterArn
_TABLE_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
# Requests that cannot put anything on an event bus or a queue: reads, receives, logs.
_QUIET = ("DynamoDB", "AmazonSQS.ReceiveMessage", "AmazonSQS.DeleteMessage",
          "AmazonSQS.ChangeMessageVisibility", "AmazonSQS.GetQueue", "Logs_")


class Activity:
    """Wakes local pollers when the emulator served a request that may have given them
    something to read: a table write (the stream) or anything that can put an event on a
    bus or a message on a queue. Pollers then read at once instead of polling fast."""

    STREAM, BUS = "stream", "bus"

    def __init__(self) -> None:
        self._flags = {self.STREAM: threading.Event(), self.BUS: threading.Event()}
        # EventBridge Scheduler requests that may have changed a schedule: the local bus
        # lists the schedules again only when this moved (or now and then).
        self.schedule_writes = 0

    def saw(self, target: str) -> None:
        if target.startswith("DynamoDB_"):
            if target.partition(".")[2] in _TABLE_WRITES:
                self._flags[self.STREAM].set()
        elif not target.startswith(_QUIET):
            self._flags[self.BUS].set()

    def wait(self, kind: str, timeout: float) -> None:
        """Until a request of ``kind`` was seen (since the last call) or ``timeout``."""
        flag = self._flags[kind]
        flag.wait(timeout)
        flag.clear()


class _Gate:
    """Requests pass side by side; ``closed()`` waits until none is in moto and holds new
    ones back meanwhile (a snapshot must not see a backend halfway through a change)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._inside = 0
        self._closed = False
        self._mine = threading.local()  # this thread's requests in moto now

    @contextlib.contextmanager
    def passing(self) -> Iterator[None]:
        # A request moto serves may make requests of its own in the same thread
        # (CloudFormation creating Batch resources through batchplane): those pass at
        # once, or a snapshot waiting for the outer one would wait for good.
        depth = getattr(self._mine, "depth", 0)
        if depth:
            self._mine.depth = depth + 1
            try:
                yield
            finally:
                self._mine.depth = depth
            return
        with self._cond:
            self._cond.wait_for(lambda: not self._closed)
            self._inside += 1
        self._mine.depth = 1
        try:
            yield
        finally:
            self._mine.depth = 0
            with self._cond:
                self._inside -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def closed(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._closed)
            self._closed = True
            self._cond.wait_for(lambda: self._inside == 0)
        try:
            yield
        finally:
            with self._cond:
                self._closed = False
                self._cond.notify_all()


class _SerializeDynamoDB:
    def __init__(self, app: WSGIApp, activity: Activity) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.activity = activity
        self.gate = _Gate()
        self.changes = 0  # requests that may have changed a saved backend
        self.journal: Journal | None = None  # on a data directory: S3 and Logs writes, kept at once

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_"):
            with self.gate.passing(), self.lock:
                body: Iterable[bytes] = list(self.app(environ, start_response))
            self.activity.saw(target)
            return body
        kept = None
        if self.journal is not None and journaled(environ):
            payload = environ["wsgi.input"].read()
            environ["wsgi.input"] = io.BytesIO(payload)
            kept = environ, payload
        direct = _handler_for(environ.get("PATH_INFO", ""), target, environ.get("HTTP_AUTHORIZATION", ""))
        if direct is not None and environ.get("REQUEST_METHOD") == "POST":
            body = self.run(target, lambda: _serve_directly(direct, environ, start_response), kept)
        else:
            body = self.run(target, lambda: self.app(environ, start_response), kept)  # moto has made the change by now
        signed_for = environ.get("HTTP_AUTHORIZATION", "")
        if environ.get("REQUEST_METHOD") != "GET" and "/scheduler/aws4_request" in signed_for:
            self.activity.schedule_writes += 1
        return body

    def run(self, target: str, serve: Callable[[], Any], kept: tuple[dict[str, Any], bytes] | None = None) -> Any:
        """Serve a request that is not DynamoDB's (by the app, or by moto's handler directly)
        with the bookkeeping of every request: saves wait for it, it counts as a change,
        its activity wakes who waits for it. ``kept``: the request (environ and body) to
        journal before it is answered."""
        with self.gate.passing():
            out = serve()
            self.changes += 1
            if kept is not None and self.journal is not None:
                self.journal.append(*kept)
        self.activity.saw(target)
        return out


class _Dispatcher(DomainDispatcherApplication):
    """moto's dispatcher, remembering which backend serves a host. moto's own lists its
    package directory and tries every backend's URL patterns on each request, a tenth of
    local mode's CPU time under load."""

    _modules = frozenset(backends.list_of_moto_modules())

    def __init__(self, create_app: Callable[..., Any]) -> None:
        super().__init__(create_app)
        self._backends: dict[str, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        if host is None:
            return None
        if host == "moto_api" or host in self._modules:
            return host
        if host not in self._backends:
            self._backends[host] = next(
                (backend for backend, pattern in self.backend_url_patterns if pattern.match(f"http://{host}")), None
            )
        return self._backends[host]


# The services whose requests a control plane client sends as JSON with X-Amz-Target to
# "/", which moto serves with one handler: those go to it directly (below), by their
# SigV4 signing name. Everything else (DynamoDB, with its lock; S3; SQS's query API)
# goes through moto's Flask app, as requests to the port do.
_DIRECT = {"events": "events", "logs": "logs", "ecs": "ecs", "states": "stepfunctions"}
_handlers: dict[str, Callable[..., Any]] = {}


def _header(request: AWSPreparedRequest, name: str) -> str:
    """A header of a botocore request as text: its values may be bytes, and str() of those
    would be "b'...'"."""
    value = request.headers.get(name) or ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _handler_for(path: str, target: str, auth: str) -> Callable[..., Any] | None:
    """moto's handler for a request to ``path`` with X-Amz-Target ``target``, signed with
    ``auth``, if it can be served without the Flask app: what moto's app would route it
    to (the service's ``/`` rule), as moto's own in-process mock (mock_aws) does. Flask's
    routing, request and response objects around that call were a third of the cost of
    each request."""
    if not target or path not in ("", "/"):
        return None
    try:
        signing_name = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")[3]
    except IndexError:
        return None
    service = _DIRECT.get(signing_name)
    if service is None:
        return None
    if service not in _handlers:
        backend_dict = backends.get_backend(service)  # type: ignore[call-overload]
        account = next(iter(backend_dict)) if backend_dict else "123456789012"
        _handlers[service] = backend_dict[account]["us-east-1"].flask_paths["/"]
    return _handlers[service]


def _dispatch(handler: Callable[..., Any], request: AWSPreparedRequest | Request) -> tuple[int, dict[str, str], bytes]:
    """Call moto's handler as its Flask view does (moto.core.utils.convert_to_flask_response)."""
    normalized = normalize_request(request)
    try:
        result = handler(normalized, normalized.raw_url, dict(normalized.headers))
    except ClientError as e:
        result = 400, {}, e.response["Error"]["Message"]
    except HTTPException as e:
        result = e.code or 500, dict(e.get_headers()), e.get_body()
    status, headers, body = result if len(result) == 3 else (200, {}, result)  # noqa: PLR2004 - moto's handlers answer (status, headers, body) or a body alone
    data = body.encode() if isinstance(body, str) else (body or b"")
    return int(status), {k: str(v) for k, v in dict(headers).items()}, data


def _serve_directly(handler: Callable[..., Any], environ: dict[str, Any],
                    start_response: Callable[..., Any]) -> list[bytes]:
    """A request to the port served by moto's handler directly (``_handler_for``),
    answered as the Flask app answers (its default content type included)."""
    status, headers, data = _dispatch(handler, Request(environ))
    fields = {k.lower(): (k, v) for k, v in headers.items()}
    fields.setdefault("content-type", ("Content-Type", "text/html; charset=utf-8"))
    fields["content-length"] = ("Content-Length", str(len(data)))
    reason = http.client.responses.get(status, "")
    start_response(f"{status} {reason}", list(fields.values()))
    return [data]


def _environ(request: AWSPreparedRequest) -> dict[str, Any]:
    """The WSGI environ of a botocore request, as a server would make it."""
    url = urlsplit(request.url)
    body = request.body or b""
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        body = body.encode()
    fields = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote(url.path) or "/",
        "RAW_URI": url.path + (f"?{url.query}" if url.query else ""),
        "QUERY_STRING": url.query,
        "SERVER_NAME": url.hostname or "127.0.0.1",
        "SERVER_PORT": str(url.port or 80),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": url.scheme or "http",
    }
    for key, raw in request.headers.items():
        value = raw.decode() if isinstance(raw, bytes) else raw
        name = key.upper().replace("-", "_")
        if name == "CONTENT_TYPE":
            fields["CONTENT_TYPE"] = value
        elif name != "CONTENT_LENGTH":
            fields[f"HTTP_{name}"] = value
    fields.setdefault("HTTP_HOST", url.netloc)
    return _wsgi(fields, bytes(body))


def _wsgi(fields: dict[str, str], body: bytes) -> dict[str, Any]:
    """A WSGI environ from a request's string fields (as the journal keeps them) and body."""
    return {**fields, "wsgi.version": (1, 0), "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(),
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(body))}


def _call(app: WSGIApp, environ: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """Run one request through a WSGI app: its status and headers, and its whole body."""
    response: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:  # noqa: ARG001 - PEP 3333's start_response(status, headers, exc_info)
        response.update(status=status, headers=headers)
        return lambda data: response.setdefault("written", []).append(data)

    chunks = app(environ, start_response)
    try:
        data = b"".join([*response.get("written", []), *chunks])
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return response, data


class _Raw(io.BytesIO):
    """A response body as botocore reads it from urllib3."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        contents = self.read()
        while contents:
            yield contents
            contents = self.read()


class _Handler(WSGIRequestHandler):
    """werkzeug's handler, keeping connections alive. werkzeug's development server closes
    every connection (http.server cannot drain a request body the app left unread), so
    each request to the emulator paid for a new TCP connection and a new server thread:
    a third of SubmitJob's time in local mode. Here the body is read whole before the
    app runs and the response is sent with its length, so the connection can carry the
    next request."""

    # Headers and body are separate writes on a kept-alive connection; TCP_NODELAY stops
    # the second from waiting on the client's delayed ACK.
    disable_nagle_algorithm = True

    def run_wsgi(self) -> None:
        environ = self.make_environ()
        stream = environ["wsgi.input"]
        if environ.get("wsgi.input_terminated"):  # chunked: werkzeug de-chunks it
            body = stream.read()
        else:
            body = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
        # The app sees a plain body of known length (not chunked any more).
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("wsgi.input_terminated", None)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        self.environ = environ
        try:
            response, data = _call(self.server.app, environ)
        except Exception:  # noqa: BLE001 - a 500, as werkzeug answers a crashed app
            log.exception("moto failed on %s %s", self.command, self.path)
            response = {"status": "500 Internal Server Error", "headers": [("Content-Type", "text/plain")]}
            data = b"moto failed on this request"
            self.close_connection = True
        code, _, message = response["status"].partition(" ")
        self.send_response(int(code), message)
        headers = [(k, v) for k, v in response["headers"] if k.lower() not in ("connection", "transfer-encoding")]
        for key, value in headers:
            self.send_header(key, value)
        no_body = (self.command == "HEAD" or int(code) < HTTPStatus.OK
                   or int(code) in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED))
        if not no_body and not any(k.lower() == "content-length" for k, _ in headers):
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not no_body:
            self.wfile.write(data)
        self.wfile.flush()


class _Pickler(pickle.Pickler):
    """Pickles moto's backends: their locks come back as new, unheld locks."""

    dispatch_table = {**copyreg.dispatch_table,
                      type(threading.Lock()): lambda _: (threading.Lock, ()),
                      type(threading.RLock()): lambda _: (threading.RLock, ())}


LOOPBACK_SIGNATURE = "batchplane-loopback"


class _LoopbackSigner(BaseSigner):
    """SigV4's headers without its signature, for the control plane's own requests, which
    never leave this process (``Emulator.attach``): moto reads the access key, the region
    and the service of the credential scope and checks no signature, and computing one
    was half of a CreateLogStream's CPU on the client's side."""

    REQUIRES_REGION = True

    def __init__(self, credentials: Any, service_name: str, region_name: str) -> None:
        self.credentials = credentials
        self.service_name = service_name
        self.region_name = region_name

    def add_auth(self, request: Any) -> None:
        if self.credentials is None:
            raise NoCredentialsError
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            del request.headers[name]  # a retry is signed again
        request.headers["X-Amz-Date"] = stamp
        if self.credentials.token:
            request.headers["X-Amz-Security-Token"] = self.credentials.token
        scope = f"{self.credentials.access_key}/{stamp[:8]}/{self.region_name}/{self.service_name}/aws4_request"
        request.headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={scope}, "
                                            f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}")


def _loopback_signer(signature_version: Any, **_: Any) -> str | None:
    """choose-signer: plain SigV4 (not S3's, not presigning) becomes ``_LoopbackSigner``."""
    return LOOPBACK_SIGNATURE if signature_version == "v4" else None


botocore.auth.AUTH_TYPE_MAPS[LOOPBACK_SIGNATURE] = _LoopbackSigner


class Emulator:
    def __init__(self) -> None:
        self.server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.activity = Activity()
        self._saved_at = 0

    def attach(self, client: Any) -> Any:
        """Serve ``client``'s requests in this process: the same app the emulator's port
        serves (DynamoDB one request at a time, the activity wake-ups), without the
        sockets, HTTP parsing and server threads in between, which were a third of local
        mode's CPU. For the control plane's own clients; users and jobs use the port."""
        client.meta.events.register_first("before-send", self._send)
        client.meta.events.register("choose-signer", _loopback_signer)
        # One User-Agent for all its requests: botocore builds it again twice a request
        # (a third of a CreateLogStream's CPU on the client side), and nothing here reads it.
        creator = getattr(client, "_user_agent_creator", None)
        if creator is not None:
            user_agent = creator.to_string()
            creator.to_string = lambda: user_agent
        return client

    def _send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        assert self.server is not None, "the emulator is not running"
        target = _header(request, "X-Amz-Target")
        direct = _handler_for(urlsplit(request.url).path, target, _header(request, "Authorization"))
        if direct is not None:
            app = self._app()
            kept = None
            if app.journal is not None and target.startswith("Logs_"):  # of the direct ones, what it keeps
                environ = _environ(request)
                if journaled(environ):
                    kept = environ, environ["wsgi.input"].getvalue()
            status, headers, data = app.run(target, lambda: _dispatch(direct, request), kept)
            fields = HTTPHeaders()
            for key, value in headers.items():
                fields[key] = value
            return AWSResponse(request.url, status, fields, _Raw(data))
        response, data = _call(self.server.app, _environ(request))
        headers = HTTPHeaders()
        for key, value in response["headers"]:
            headers[key] = value
        return AWSResponse(request.url, int(response["status"].split(" ", 1)[0]), headers, _Raw(data))

    def start(self) -> str:
        moto_fixes.install()
        # moto's backends are this process's globals: a stack starts from an empty
        # emulator (and its saved state, see ``load``), not from an earlier stack's.
        moto_api_backend.reset()
        app = _SerializeDynamoDB(_Dispatcher(create_backend_app), self.activity)
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- persistence ------------------------------------------------------------------

    def save(self, path: Path) -> bool:
        """Write the saved services' backends to ``path`` (atomically) if they may have
        changed since the last save; True when it wrote. The journal moves on to a new
        file meanwhile: the snapshot holds every request of the files before it."""
        app = self._app()
        if app.changes == self._saved_at:
            return False
        with app.gate.closed():
            changes = app.changes
            replay_from = app.journal.rotate() if app.journal is not None else 0
            state = {service: {account: dict(regions) for account, regions in backends.get_backend(service).items()}  # type: ignore[call-overload]
                     for service in SAVED_SERVICES}
            buffer = io.BytesIO()
            _Pickler(buffer).dump({"services": state, "journal": replay_from})
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(buffer.getvalue())
        tmp.replace(path)
        self._saved_at = changes
        if app.journal is not None:
            app.journal.prune(replay_from)
        return True

    def load(self, path: Path) -> None:
        """Put back what ``save`` wrote, serve the journal's requests after it again, and
        journal from now on (before anything else uses the emulator)."""
        snapshot: dict[str, Any] = {}
        if path.exists():
            try:
                snapshot = pickle.loads(path.read_bytes())  # noqa: S301 - our own file, in the user's data directory
            except Exception:  # noqa: BLE001 - a snapshot from another moto version, say: start empty
                log.exception("the emulator's saved state in %s cannot be read; starting without it", path)
        # Saved before the journal: the services alone.
        services = snapshot.get("services", snapshot) if snapshot else {}
        replay_from = int(snapshot.get("journal", 0))
        for service, accounts in services.items():
            live = backends.get_backend(service)
            for account, regions in accounts.items():
                for region, backend in regions.items():
                    dict.__setitem__(live[account], region, backend)
        app, journal = self._app(), Journal(path)
        journal.prune(replay_from)
        replayed = 0
        for fields, body in journal.records(since=replay_from):
            _call(app, _wsgi(fields, body))  # counts as a change: the next save holds it
            replayed += 1
        # Appends go to a new file: the replayed ones stay in theirs until that save.
        journal.open(max([replay_from - 1, *(n for n, _ in journal.files())]) + 1)
        app.journal = journal
        if replayed:
            log.info("served %d journaled S3 and Logs writes again, after the last save", replayed)

    def _app(self) -> _SerializeDynamoDB:
        assert self.server is not None, "the emulator is not running"
        app = self.server.app
        assert isinstance(app, _SerializeDynamoDB)
        return app

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            journal = self._app().journal
            if journal is not None:
                journal.close()
        if self._thread:
            self._thread.join(timeout=5)
