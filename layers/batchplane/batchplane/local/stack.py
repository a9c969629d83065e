"""``batchplane local up``: the emulator, the resources of template.yaml, the handlers,
the local launcher, and one HTTP port in front of it all."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import os
import re
import secrets
import subprocess
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from botocore.config import Config

from .. import aws, clock, config, sigv4, wiring
from ..adapters.ecs import LOG_GROUP
from ..dashboard import PREFIX as DASHBOARD
from ..dashboard import Dashboard
from ..dashboard.server import answer as answer_dashboard
from ..dashboard.server import for_endpoint as dashboard_for
from ..store.sqlite import SqliteStore
from . import cloudformation, worker
from .bus import LocalBus
from .emulator import Emulator
from .instances import DevicePool
from .launcher import LocalProcessLauncher, LocalProvisioner
from .router import Router
from .template import Template, find_template
from .workflows import create_state_machines

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

log = logging.getLogger(__name__)
TABLE_NAME = "batchplane"
STORES = ("sqlite", "dynamodb")  # the embedded store (default), or the table on moto
DATABASE = "batchplane.db"  # the embedded store's file in the data directory
JOB_KEY_FILE = "job-credentials.json"  # the access key jobs are given (see LocalStack._job_key)
# Accepted unless other keys are configured: the quick start's, as MinIO has its minioadmin.
DEFAULT_ACCESS_KEY = "local"
EMULATOR_STATE = "emulator.pickle"  # S3, Logs, SQS, EventBridge and Scheduler data, saved
SAVE_SECONDS = 1.0  # how often the emulator's data is saved when it changed, at most
SAVE_COST_FACTOR = 30  # pause after a save, in multiples of the time it took
WORKER_RESTART_SECONDS = 1.0  # a worker process that ended is started again after this
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


class LocalStack:
    """The whole service in this process. ``start()`` returns once it answers requests."""

    def __init__(self, port: int = 0, *, template: Path | None = None,  # noqa: PLR0913 - keyword-only: the options of `batchplane local up`
                 kill_grace_seconds: float = 30.0, timeout_scale: float = 1.0,
                 store: str = "sqlite", data_dir: Path | str | None = None,
                 credentials: Mapping[str, str] | None = None, any_credentials: bool = False,
                 gpus: int | None = None, workers: bool = False) -> None:
        if store not in STORES:
            raise ValueError(f"store must be one of {', '.join(STORES)}, not {store!r}")
        if store == "dynamodb" and data_dir is not None:
            raise ValueError("--store dynamodb keeps its table in the emulator's memory: it takes no data directory")
        self.port = port
        self.store_kind = store
        # None: the embedded store in memory, gone when the stack stops.
        self.data_dir = Path(data_dir).expanduser() if data_dir is not None else None
        self.store: SqliteStore | None = None
        self._saver: threading.Thread | None = None
        self._stopping = threading.Event()
        self.template_path = template or find_template()
        self.kill_grace_seconds = kill_grace_seconds
        self.timeout_scale = timeout_scale
        self.moto: Emulator | None = None
        self.router: Router | None = None
        self.bus: LocalBus | None = None  # EventBridge rules and Scheduler on moto
        self.launcher: LocalProcessLauncher | None = None
        self.server: ThreadingHTTPServer | None = None
        self.internal: ThreadingHTTPServer | None = None
        self._saved_env: dict[str, str | None] = {}
        # The access keys whose SigV4 signatures the Batch API accepts (see authenticate).
        # None: the default key, local/local, and the one in this environment, if any.
        self.credentials = dict(credentials) if credentials is not None else None
        self.any_credentials = any_credentials
        self.gpus = gpus  # GPUs the attempts share (None: what nvidia-smi lists here)
        self.keys: dict[str, str] = {}
        self.job_access_key = ""
        self.dashboard: Dashboard | None = None
        # A worker process for some stream consumers (local/worker.py): `local up` on a
        # data directory's embedded store, whose file the two processes share.
        self.workers = workers
        self.worker: subprocess.Popen[bytes] | None = None

    # -- lifecycle --------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalStack:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.moto = Emulator()
        moto_endpoint = self.moto.start()
        cloudformation.install()  # its AWS::Batch::* resources are batchplane's
        if self.data_dir:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.moto.load(self.data_dir / EMULATOR_STATE)
        host, port = urlsplit(moto_endpoint).hostname, urlsplit(moto_endpoint).port
        self._set_env({
            "AWS_ENDPOINT_URL": moto_endpoint,
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID") or "local",
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY") or "local",
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            "AWS_REGION": os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            "BATCHPLANE_TABLE": TABLE_NAME,
            "BATCHPLANE_LAUNCHER": "local",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "batchplane",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            "POWERTOOLS_METRICS_NAMESPACE": "batchplane",
        })
        config.settings.cache_clear()
        aws.use_transport(self.moto.attach)
        wiring.reset()
        template = Template.load(self.template_path)
        clients = {name: self._client(name, moto_endpoint)
                   for name in ("dynamodb", "dynamodbstreams", "logs")}
        if self.store_kind == "sqlite":
            self.store = SqliteStore(self.data_dir / DATABASE if self.data_dir else ":memory:")
            wiring.register_store(self.store)
            with contextlib.suppress(clients["logs"].exceptions.ResourceAlreadyExistsException):
                clients["logs"].create_log_group(logGroupName=LOG_GROUP)  # restored, on a restart
        else:
            create_resources(template, clients["dynamodb"], clients["logs"], TABLE_NAME)
        self.router = Router(template, TABLE_NAME, clients, self.moto.activity, store=self.store,
                             sqs=self._client("sqs", moto_endpoint))
        bus_clients = {n: self._client(n, moto_endpoint) for n in ("events", "sqs", "scheduler")}
        self.bus = LocalBus(template, self.router, bus_clients, self._set_env, activity=self.moto.activity).start()
        # Jobs reach the emulated AWS services through the front port, like any client.
        self.launcher = LocalProcessLauncher(
            self.router.publish, clients["logs"],
            kill_grace_seconds=self.kill_grace_seconds, timeout_scale=self.timeout_scale,
            state_dir=self.data_dir / "tasks" if self.data_dir else None,
            gpus=DevicePool.of_machine(self.gpus),
        )
        wiring.register_launcher("local", self.launcher, LocalProvisioner())
        assert host and port
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), _make_handler(self, host, port))
        self.server.daemon_threads = True
        # The stack's own callers (moto's ASL interpreter invoking the template's
        # functions) use a second port that users and jobs are never given.
        self.internal = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self, host, port, internal=True))
        self.internal.daemon_threads = True
        job_key, job_secret = self._job_key()
        self.job_access_key = job_key
        self.keys = self._known_keys()
        self.keys[job_key] = job_secret
        # The dashboard reads the API through this port like any client, with a key of its own.
        dash_key, dash_secret = "BPDASH" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)
        self.keys[dash_key] = dash_secret
        self.dashboard = dashboard_for(self.endpoint, config.settings().region, dash_key, dash_secret)
        self.launcher.extra_env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": job_key,
            "AWS_SECRET_ACCESS_KEY": job_secret,
            "AWS_DEFAULT_REGION": config.settings().region,
        }
        threading.Thread(target=self.server.serve_forever, name="front", daemon=True).start()
        threading.Thread(target=self.internal.serve_forever, name="internal", daemon=True).start()
        machines = create_state_machines(
            template, self._client("stepfunctions", moto_endpoint),
            # moto's ASL interpreter calls Lambda at localhost:$MOTO_PORT: the internal port.
            lambda: self._set_env({"MOTO_PORT": str(self.internal.server_address[1])}),
        )
        self._set_env({"BATCHPLANE_ARRAY_STATE_MACHINE": machines["ArrayStateMachine"]})
        wiring.reset()
        elsewhere = worker.FUNCTIONS if self.workers and self.store is not None and self.data_dir else ()
        self.router.start(elsewhere=elsewhere)
        if elsewhere:
            self._start_worker()
            threading.Thread(target=self._supervise_worker, name="worker-supervisor", daemon=True).start()
        if self.data_dir:
            self._saver = threading.Thread(target=self._save_emulator, name="emulator-save", daemon=True)
            self._saver.start()
        # Attempts in flight when an earlier run of this data directory stopped.
        self.launcher.adopt()
        wiring.services().watchdog.recover()
        return self

    def _start_worker(self) -> None:
        assert self.data_dir is not None
        self.worker = subprocess.Popen(worker.command(self.data_dir / DATABASE, self.template_path, TABLE_NAME),
                                       stdin=subprocess.DEVNULL)

    def _supervise_worker(self) -> None:
        """Start the worker again if it ends while the stack runs: its consumers resume at
        their checkpoints, so what it was publishing is published, late rather than never."""
        while self.worker is not None:
            code = self.worker.wait()
            if self._stopping.wait(WORKER_RESTART_SECONDS):
                return
            log.error("the worker process ended (exit status %s); starting it again", code)
            self._start_worker()

    def _known_keys(self) -> dict[str, str]:
        if self.credentials is not None:
            return dict(self.credentials)
        keys = {DEFAULT_ACCESS_KEY: DEFAULT_ACCESS_KEY}
        key_id, secret = self._saved_env_value("AWS_ACCESS_KEY_ID"), self._saved_env_value("AWS_SECRET_ACCESS_KEY")
        if key_id and secret:
            keys[key_id] = secret
        return keys

    def _saved_env_value(self, name: str) -> str | None:
        """``name`` as this process had it before the stack set its own."""
        return self._saved_env[name] if name in self._saved_env else os.environ.get(name)

    def _job_key(self) -> tuple[str, str]:
        """The access key the stack gives its jobs: random, and kept in the data directory
        so that attempts still running after a restart keep theirs."""
        path = self.data_dir / JOB_KEY_FILE if self.data_dir else None
        if path is not None and path.exists():
            with contextlib.suppress(ValueError, KeyError, OSError):
                saved = json.loads(path.read_text())
                return str(saved["accessKeyId"]), str(saved["secretAccessKey"])
        key = ("BPJOB" + secrets.token_hex(8)).upper(), secrets.token_urlsafe(30)
        if path is not None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"accessKeyId": key[0], "secretAccessKey": key[1]}, f)
        return key

    def authenticate(self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes) -> str | None:
        """The access key that signed a Batch API request (sigv4.Refusal if none this
        stack knows did); None when the stack takes any credentials."""
        if self.any_credentials:
            return None
        return sigv4.verify(method, target, headers, body, secret_for=self.keys.get,
                            region=config.settings().region, service="batch")

    def _save_emulator(self) -> None:
        """Save the emulator's user-facing services now and then (they live in its memory).
        A save pickles them whole and holds requests back meanwhile, so the pause after
        each is SAVE_COST_FACTOR times what it took: at most a few percent of the time."""
        assert self.moto is not None and self.data_dir is not None
        pause = SAVE_SECONDS
        while not self._stopping.wait(pause):
            began = time.monotonic()
            try:
                self.moto.save(self.data_dir / EMULATOR_STATE)
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("saving the emulator's state failed")
            pause = max(SAVE_SECONDS, SAVE_COST_FACTOR * (time.monotonic() - began))

    def expire(self) -> int:
        """Run the embedded store's TTL sweep now (tests move the clock, then expire)."""
        assert self.router is not None
        return self.router.expire()

    def tick(self) -> None:
        """Run the scheduler's periodic tick now (tests move the clock, then tick)."""
        assert self.router is not None
        fn = self.router.functions["SchedulerFunction"]
        fn.invoke({"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                   "source": "aws.events", "account": config.settings().account_id,
                   "time": clock.now_iso(), "region": config.settings().region,
                   "resources": [], "detail": {}})

    def interrupt(self, job_id: str) -> str:
        """Send an EC2 Spot Instance Interruption Warning for the instance running the job,
        through the same event path as on AWS; returns the instance id."""
        assert self.launcher is not None and self.router is not None
        instance = self.launcher.instance_of(job_id)
        if instance is None:
            raise LookupError(f"job {job_id} has no running attempt")
        s = config.settings()
        self.router.publish({
            "version": "0", "id": str(uuid.uuid4()),
            "detail-type": "EC2 Spot Instance Interruption Warning", "source": "aws.ec2",
            "account": s.account_id, "time": clock.now_iso(),
            "region": s.region, "resources": [f"arn:aws:ec2:{s.region}:{s.account_id}:instance/{instance}"],
            "detail": {"instance-id": instance, "instance-action": "terminate"},
        })
        return instance

    def stop(self) -> None:
        if self.launcher:
            self.launcher.shutdown()
        if self.bus:
            self.bus.stop()
        if self.router:
            self.router.stop()
        self._stopping.set()  # the worker's supervisor starts it no more
        if self.worker:
            self.worker.terminate()
            try:
                self.worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait(timeout=10)
        for server in (self.server, self.internal):
            if server:
                server.shutdown()
                server.server_close()
        if self._saver:
            self._saver.join(timeout=10)
        if self.moto and self.data_dir and self.moto.server:
            self.moto.save(self.data_dir / EMULATOR_STATE)
        if self.moto:
            self.moto.stop()
        if self.store:
            wiring.register_store(None)
            self.store.close()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        config.settings.cache_clear()
        aws.use_transport(None)
        wiring.reset()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- setup ------------------------------------------------------------------------

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _client(self, name: str, endpoint: str) -> Any:
        assert self.moto is not None
        return self.moto.attach(boto3.session.Session().client(  # type: ignore[call-overload]  # any service
            name, endpoint_url=endpoint, region_name=os.environ["AWS_REGION"],
            config=Config(max_pool_connections=32),
        ))

    # -- the Batch API ----------------------------------------------------------------

    def call_api(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Hand one HTTP request to the API function as an API Gateway proxy event."""
        assert self.router is not None
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
        result = self.router.functions["ApiFunction"].invoke(event)
        out = result.get("body") or ""
        data = base64.b64decode(out) if result.get("isBase64Encoded") else out.encode()
        resp_headers = dict(result.get("headers") or {})
        for k, v in (result.get("multiValueHeaders") or {}).items():
            resp_headers[k] = v[-1]
        return int(result["statusCode"]), resp_headers, data


def create_resources(template: Template, dynamodb: Any, logs: Any, table_name: str) -> None:
    """The table (and job log group) exactly as template.yaml declares them."""
    props = template.table()
    kwargs: dict[str, Any] = {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")
                              if k in props}
    kwargs["BillingMode"] = props.get("BillingMode", "PAY_PER_REQUEST")
    if "StreamSpecification" in props:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    dynamodb.create_table(TableName=table_name, **kwargs)
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)
    logs.create_log_group(logGroupName=LOG_GROUP)


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _make_handler(stack: LocalStack, moto_host: str, moto_port: int, *,
                  internal: bool = False) -> type[BaseHTTPRequestHandler]:
    """The front port's handler; ``internal``: the port of the stack's own callers, which
    may also invoke the template's functions."""

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
            if self.path.startswith("/_batchplane/"):
                self._local_control(body)
            elif service is None and not internal and (path == DASHBOARD or path.startswith(DASHBOARD + "/")):
                assert stack.dashboard is not None
                answer_dashboard(self, stack.dashboard)
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
                    status, headers, data = stack.call_api(self.command, self.path, dict(self.headers), body)
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
                self.signer = stack.authenticate(self.command, self.path, self.headers.items(), body)
            except sigv4.Refusal as e:
                data = json.dumps({"__type": e.code, "message": e.message}).encode()
                self._reply(403, {"Content-Type": "application/json", "x-amzn-errortype": e.code}, data)
                return False
            return True

        def _invoke(self, function: str, body: bytes) -> None:
            """Lambda Invoke of one of the template's functions, run in this process."""
            name = unquote(function).rsplit(":", 1)[-1]
            assert stack.router is not None
            fn = stack.router.functions.get(name)
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
            must not reclaim the instance under another job."""
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
            names = [rule.name for rule in (stack.bus.rules if stack.bus else [])]
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
            conn = http.client.HTTPConnection(moto_host, moto_port, timeout=60)
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
