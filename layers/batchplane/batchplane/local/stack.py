"""``batchplane local up``: the emulator, the resources of template.yaml, the handlers,
the local launcher, and one HTTP port in front of it all."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import select
import socket
import subprocess
import threading
import time
import uuid
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from .. import aws, clock, config, wiring
from ..adapters.ecs import LOG_GROUP
from ..dashboard.server import for_endpoint as dashboard_for
from ..store.sqlite import SqliteStore
from . import cloudformation, worker
from .bus import LocalBus
from .emulator import Emulator
from .front import ApiFront, make_handler
from .instances import DevicePool
from .launcher import LocalProcessLauncher, LocalProvisioner
from .router import Router
from .template import Template, find_template
from .workflows import create_state_machines

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..dashboard import Dashboard

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
WORKER_READY_SECONDS = 60.0  # the most a start waits for the worker to serve the front port
FRONT_BACKLOG = 128  # connections the front port queues (while a worker starts, say)
# How long a start tries to bind a front port in use: the worker of a stack killed a moment
# ago may still hold its copy of the socket.
FRONT_BIND_SECONDS = 3.0


class LocalStack:
    """The whole service in this process. ``start()`` returns once it answers requests."""

    def __init__(self, port: int = 0, *, template: Path | None = None,  # noqa: PLR0913 - keyword-only: the options of `batchplane local up`
                 kill_grace_seconds: float = 30.0, timeout_scale: float = 1.0,
                 store: str = "sqlite", data_dir: Path | str | None = None,
                 credentials: Mapping[str, str] | None = None, any_credentials: bool = False,
                 gpus: int | None = None, workers: bool = False, api_in_worker: bool = False) -> None:
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
        # ... which also serves the front port's Batch API requests (with workers): the
        # port's socket is this process's, handed to each worker it starts; the requests
        # for anything else it sends on to this process's own front server.
        self.api_in_worker = api_in_worker
        self.front_socket: socket.socket | None = None
        self.api: ApiFront | None = None

    # -- lifecycle --------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The front port: what users and jobs are given."""
        assert self.server is not None
        host, port = (self.front_socket.getsockname() if self.front_socket else self.server.server_address)[:2]
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
        job_key, job_secret = self._job_key()
        self.job_access_key = job_key
        self.keys = self._known_keys()
        self.keys[job_key] = job_secret
        # The dashboard reads the API through the front port like any client, with a key of its own.
        dash_key, dash_secret = "BPDASH" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)
        self.keys[dash_key] = dash_secret
        self.api = ApiFront(self.router.functions["ApiFunction"], self.keys, any_credentials=self.any_credentials)
        in_worker = self._workers_run() and self.api_in_worker
        if in_worker:
            self.front_socket = _bind_front(self.port)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0 if in_worker else self.port),
                                          make_handler(self.api, host, port, stack=self))
        self.server.daemon_threads = True
        # The stack's own callers (moto's ASL interpreter invoking the template's
        # functions, a worker calling the launcher) use a second port that users and jobs
        # are never given.
        self.internal = ThreadingHTTPServer(("127.0.0.1", 0),
                                            make_handler(self.api, host, port, stack=self, internal=True))
        self.internal.daemon_threads = True
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
        elsewhere = worker.FUNCTIONS if self._workers_run() else ()
        self.router.start(elsewhere=elsewhere)
        if elsewhere:
            self._start_workers()
        if self.data_dir:
            self._saver = threading.Thread(target=self._save_emulator, name="emulator-save", daemon=True)
            self._saver.start()
        # Attempts in flight when an earlier run of this data directory stopped.
        self.launcher.adopt()
        wiring.services().watchdog.recover()
        return self

    def _workers_run(self) -> bool:
        """Whether a worker process runs beside this one: asked for, and on a data
        directory's embedded store (a file both can open)."""
        return self.workers and self.store is not None and self.data_dir is not None

    def _start_workers(self) -> None:
        """The worker process, and what keeps it running."""
        if self.front_socket is not None:
            # The worker's SubmitJob commits cannot wake this process's consumers: they
            # look for its stream records as it looks for this one's.
            assert self.store is not None
            threading.Thread(target=self.store.follow, args=(self._stopping, worker.POLL_SECONDS),
                             name="follow-worker", daemon=True).start()
        self._start_worker()
        threading.Thread(target=self._supervise_worker, name="worker-supervisor", daemon=True).start()

    def _start_worker(self) -> None:
        """Start the worker process; with the front port, return once it serves it (or
        after WORKER_READY_SECONDS: the port's requests wait in its queue meanwhile)."""
        assert self.data_dir is not None and self.server is not None and self.internal is not None
        command = worker.command(self.data_dir / DATABASE, self.template_path, TABLE_NAME)
        if self.front_socket is None:
            self.worker = subprocess.Popen(command, stdin=subprocess.DEVNULL)
            return
        ready, ready_w = os.pipe()
        upstream = f"http://127.0.0.1:{self.server.server_address[1]}"
        internal = f"http://127.0.0.1:{self.internal.server_address[1]}"
        command += ["--front-fd", str(self.front_socket.fileno()), "--upstream", upstream,
                    "--internal", internal, "--ready-fd", str(ready_w)]
        try:
            self.worker = subprocess.Popen(command, stdin=subprocess.PIPE,
                                           pass_fds=(self.front_socket.fileno(), ready_w))
            os.close(ready_w)
            # The keys come on a pipe: a command line is anyone's to read (ps).
            assert self.worker.stdin is not None
            with contextlib.suppress(BrokenPipeError), self.worker.stdin as keys:
                keys.write(json.dumps({"keys": self.keys, "anyCredentials": self.any_credentials}).encode())
            readable, _, _ = select.select([ready], [], [], WORKER_READY_SECONDS)
            if not readable or not os.read(ready, 1):
                log.error("the worker process did not start serving the front port within %s s", WORKER_READY_SECONDS)
        finally:
            os.close(ready)

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
        if self.front_socket:
            self.front_socket.close()
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
        assert self.api is not None
        return self.api.call(method, raw_path, headers, body)


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


def _bind_front(port: int) -> socket.socket:
    """The front port's listening socket, for a worker process to serve (see
    FRONT_BIND_SECONDS)."""
    deadline = time.monotonic() + FRONT_BIND_SECONDS
    while True:
        try:
            return socket.create_server(("127.0.0.1", port), backlog=FRONT_BACKLOG)
        except OSError as e:
            if e.errno != errno.EADDRINUSE or not port or time.monotonic() >= deadline:
                raise
            time.sleep(0.1)
