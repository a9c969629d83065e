"""The ``batchplane`` command."""

from __future__ import annotations

import argparse
import configparser
import contextlib
import errno
import gc
import os
import signal
import sys
import threading
from pathlib import Path

import botocore.exceptions

from . import cli_jobs
from .cli_extensions import add_parsers
from .client import BatchplaneClient, BatchplaneError
from .config import settings
from .local.demo import run as run_demo


def default_data_dir() -> Path:
    """Where ``local up`` keeps its state unless told otherwise: the user's data directory."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "batchplane"


# The stack's process holds a large heap that lives as long as it does (moto's backends,
# the emulator's logs and events), and a scheduling round decodes hundreds of jobs: at the
# default thresholds (700, 10, 10) the collector kept walking that heap. Measured with
# 1,000 RUNNABLE jobs waiting on a disabled compute environment: 30 -> 19 ms of the
# stack's CPU a SubmitJob; no change for jobs that run at once or for arrays.
GC_THRESHOLDS = (50_000, 20, 20)


def _up(args: argparse.Namespace) -> int:
    from .local.stack import LocalStack  # noqa: PLC0415 - local mode needs moto (the local extra); the job commands run without it

    gc.set_threshold(*GC_THRESHOLDS)

    data_dir = None if args.memory or args.store == "dynamodb" else (args.data_dir or default_data_dir())
    try:
        credentials = read_credentials(args.credentials) if args.credentials else None
    except (OSError, ValueError) as e:
        print(f"error: --credentials {args.credentials}: {e}", file=sys.stderr)
        return 2
    try:
        stack = LocalStack(port=args.port, store=args.store, data_dir=data_dir, credentials=credentials,
                           any_credentials=args.insecure_any_credentials, gpus=args.gpus,
                           workers=True, api_in_worker=True).start()
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
        print(f"error: port {args.port} is already in use (another `batchplane local up`?): stop what "
              f"listens there, or choose another port with --port", file=sys.stderr)
        return 1
    where = f"state in {data_dir}" if data_dir else f"state in memory ({args.store}): gone when it stops"
    print(f"batchplane local stack listening on {stack.endpoint}; {where}", flush=True)
    if args.insecure_any_credentials:
        keys = "(any credentials: --insecure-any-credentials; it listens on 127.0.0.1 only)"
    elif credentials is None:
        keys = "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local"
    else:
        keys = f"(one of the {len(credentials)} access keys of {args.credentials})"
    print(f"  export AWS_ENDPOINT_URL={stack.endpoint} AWS_DEFAULT_REGION={settings().region} {keys}", flush=True)
    print(f"  dashboard: {stack.endpoint}/dashboard/", flush=True)
    print("  Ctrl-C to stop.", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()
    stack.stop()
    return 0


def read_credentials(path: Path) -> dict[str, str]:
    """The access keys of an AWS shared credentials file (each profile's
    aws_access_key_id and aws_secret_access_key), as the keys a stack accepts."""
    parser = configparser.ConfigParser()
    if not parser.read(path):
        raise OSError("cannot read the file")
    keys = {parser[p]["aws_access_key_id"].strip(): parser[p]["aws_secret_access_key"].strip()
            for p in parser.sections()
            if parser[p].get("aws_access_key_id") and parser[p].get("aws_secret_access_key")}
    if not keys:
        raise ValueError("no profile has both aws_access_key_id and aws_secret_access_key")
    return keys


def _interrupt(args: argparse.Namespace) -> int:
    """Ask a running local stack to reclaim the Spot instance under a job (signed with
    the caller's AWS credentials, as a Batch call)."""
    from .local.stack import DEFAULT_ACCESS_KEY  # noqa: PLC0415 - local mode needs moto (the local extra); the job commands run without it

    endpoint = args.endpoint or (f"http://127.0.0.1:{args.port}" if args.port else None)
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or "http://127.0.0.1:4566"
    client = BatchplaneClient(endpoint)
    if client.session.get_credentials() is None:
        # None configured: the key a stack takes unless it was given others (the quick start's).
        client.session.set_credentials(DEFAULT_ACCESS_KEY, DEFAULT_ACCESS_KEY)
    try:
        answer = client.post("/_batchplane/interrupt", {"jobId": args.job_id})
    except BatchplaneError as e:
        print(f"error: {e.message or e.code}", file=sys.stderr)
        return 1
    except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError) as e:
        print(f"error: no local stack answers at {endpoint} ({e}): start one with "
              "`batchplane local up`, or name it with --endpoint, --port or AWS_ENDPOINT_URL", file=sys.stderr)
        return 1
    print(f"interrupted instance {answer['instanceId']} running job {args.job_id}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    return run_demo(endpoint=args.endpoint, jobs=args.jobs, samples=args.samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchplane", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    local = sub.add_parser("local", help="run the service on this machine")
    local_sub = local.add_subparsers(dest="local_command", required=True)
    up = local_sub.add_parser("up", help="start the local stack in the foreground")
    up.add_argument("--port", type=int, default=4566, help="port of the API (default 4566)")
    up.add_argument("--data-dir", type=Path, help=f"where the stack keeps its state (default {default_data_dir()})")
    up.add_argument("--memory", action="store_true", help="keep state in memory only: a throwaway stack")
    up.add_argument("--store", choices=("sqlite", "dynamodb"), default="sqlite",
                    help="the control plane's store: embedded SQLite (default) or DynamoDB on the emulator "
                         "(full fidelity, in memory, slower)")
    up.add_argument("--credentials", type=Path, metavar="FILE",
                    help="the access keys the Batch API accepts, as an AWS shared credentials file (every "
                         "profile's aws_access_key_id and aws_secret_access_key); default: local/local and "
                         "the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY of this environment")
    up.add_argument("--insecure-any-credentials", action="store_true",
                    help="accept any signature, or none, on the Batch API (the port listens on 127.0.0.1 only)")
    up.add_argument("--gpus", type=int, metavar="N",
                    help="GPUs the jobs share, each attempt given its own as CUDA_VISIBLE_DEVICES "
                         "(default: those nvidia-smi -L lists; a count here is for testing without GPUs)")
    up.set_defaults(func=_up)
    interrupt = local_sub.add_parser(
        "interrupt", help="send a Spot interruption for the instance running JOB_ID"
    )
    interrupt.add_argument("job_id", metavar="JOB_ID")
    interrupt.add_argument("--endpoint", help="the local stack (default: AWS_ENDPOINT_URL, else http://127.0.0.1:4566)")
    interrupt.add_argument("--port", type=int, help="the local stack's port on 127.0.0.1")
    interrupt.set_defaults(func=_interrupt)
    demo = sub.add_parser("demo", help="run the sample workload to completion and print results")
    demo.add_argument("--endpoint", help="use a running stack instead of starting one")
    demo.add_argument("--jobs", type=int, default=8, help="number of worker jobs (default 8)")
    demo.add_argument("--samples", type=int, default=100_000, help="samples per worker")
    demo.set_defaults(func=_demo)
    add_parsers(sub)  # batchplane triggers ... / batchplane schedules ...
    cli_jobs.add_parsers(sub)  # batchplane submit / jobs / logs / wait ...
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
