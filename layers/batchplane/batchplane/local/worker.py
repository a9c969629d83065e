"""A worker process of ``batchplane local up``: some of the template's stream consumers on
the machine's second core.

One Python process is held to one core by its interpreter lock, and local mode's stack
was: the API, the scheduler, the launcher, the emulator and every stream consumer took
turns on it. A consumer that needs nothing of that process but the database runs here
instead, as its Lambda function runs apart from the others on AWS: the publisher (the
table's stream -> "Batch Job State Change" events), which reads the embedded store's
file (SQLite, shared between processes), keeps its place in it, and puts its events on
the emulator's bus through its port.

It can also serve the front port's Batch API (``--front-fd``, `local up`'s default), the
stack's busiest caller: SubmitJob then waits for no launch, event or scheduling round of
the stack's process. The port's socket is the stack's, handed to each worker it starts;
a request for anything else (S3, Logs, the dashboard, ...) goes on to the stack's own
front server, which answers it as always; the one launcher call the API makes (StopTask
at TerminateJob) goes to the stack's internal port (local/remote_launcher.py).

The stack starts it after its own consumers and stops it before it closes the store. It
ends when the stack's process does (kill -9 included): the kernel sends it SIGTERM, and
it also looks for its parent every poll. A record it was delivering when it ended is
delivered again by the next one (at least once, as Lambda's; events carry
batchplaneEventId for repeats).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import boto3

from .. import wiring
from ..store.sqlite import SqliteStore
from .front import ApiFront, make_handler
from .launcher import LocalProvisioner
from .remote_launcher import RemoteLauncher
from .router import Router
from .template import Template

if TYPE_CHECKING:
    from collections.abc import Callable

FUNCTIONS = ("PublisherFunction",)  # the consumers a worker runs
POLL_SECONDS = 0.01  # how often it looks for the stack's commits (it cannot be woken by them)
SHUTDOWN_POLL_SECONDS = 0.1  # how soon the front port's server sees that it is to stop
STOP_SECONDS = 2.0  # the most a stop waits for the consumers (see main)
_PR_SET_PDEATHSIG = 1


def command(database: Path, template: Path, table_name: str) -> list[str]:
    """How the stack starts a worker (its environment is the stack's own)."""
    return [sys.executable, "-m", "batchplane.local.worker", "--database", str(database),
            "--template", str(template), "--table", table_name, "--parent", str(os.getpid()),
            *(arg for fn in FUNCTIONS for arg in ("--function", fn))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchplane.local.worker", description=__doc__)
    parser.add_argument("--database", type=Path, required=True)
    parser.add_argument("--template", type=Path, required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--function", action="append", required=True)
    parser.add_argument("--front-fd", type=int, help="the front port's listening socket: serve its Batch API")
    parser.add_argument("--upstream", help="with --front-fd: the stack's own front port, for every other request")
    parser.add_argument("--internal", help="with --front-fd: the stack's internal port, for the launcher")
    parser.add_argument("--ready-fd", type=int, help="with --front-fd: written to once the port is served")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="worker: %(levelname)s %(name)s: %(message)s")
    if not _end_with(args.parent):
        return 0
    ended = _ending_signals()  # before any thread starts
    stop = threading.Event()
    store = SqliteStore(args.database)
    wiring.register_store(store)
    router = Router(Template.load(args.template), args.table, {}, store=store, sqs=boto3.client("sqs"))
    router.start_streams(args.function)
    watcher = threading.Thread(target=store.follow, args=(stop, POLL_SECONDS), name="follow", daemon=True)
    watcher.start()
    front = _serve_front(args, router) if args.front_fd is not None else None
    while not ended(1.0) and os.getppid() == args.parent:
        pass
    stop.set()
    if front is not None:
        front.shutdown()
        front.server_close()  # this process's copy of the socket: the stack keeps its own
    # A clean stop lets the consumers finish their batch, for at most STOP_SECONDS: when
    # the stack is gone (kill -9; its SIGTERM may come before it is), one may be retrying
    # PutEvents on its dead emulator. Ended in the middle, what it was doing the next
    # worker does again, from its checkpoint; the port is free for the next stack already.
    closing = threading.Thread(target=_close, args=(router, watcher, store), name="close", daemon=True)
    closing.start()
    closing.join(STOP_SECONDS)
    if closing.is_alive():
        os._exit(0)
    return 0


def _close(router: Router, watcher: threading.Thread, store: SqliteStore) -> None:
    router.stop()
    watcher.join(timeout=5)
    store.close()


def _serve_front(args: argparse.Namespace, router: Router) -> ThreadingHTTPServer:
    """Serve the Batch API on the stack's front socket, with the access keys the stack
    writes on stdin; tell the stack through --ready-fd once it does."""
    secrets = json.load(sys.stdin)
    upstream = urlsplit(args.upstream)
    assert upstream.hostname and upstream.port and args.internal
    # The API's one launcher call (StopTask at TerminateJob) goes to the stack's launcher.
    wiring.register_launcher("local", RemoteLauncher(args.internal), LocalProvisioner())
    api = ApiFront(router.functions["ApiFunction"], dict(secrets["keys"]),
                   any_credentials=bool(secrets["anyCredentials"]))
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(api, upstream.hostname, upstream.port, stack=None),
                                 bind_and_activate=False)
    server.socket.close()
    server.socket = socket.socket(fileno=args.front_fd)
    server.server_address = server.socket.getsockname()
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), name="front", daemon=True).start()
    if args.ready_fd is not None:
        os.write(args.ready_fd, b"1")
        os.close(args.ready_fd)
    return server


def _ending_signals() -> Callable[[float], bool]:
    """SIGTERM (the stack's stop, or its death) and SIGINT (Ctrl-C reaches the whole
    group: the stack stops us), taken by the main thread: returns a wait(timeout) that is
    True once one came. Where it can, they are blocked in this thread before any other
    starts, so that every thread inherits the block and the main thread's sigtimedwait
    takes them at once (a signal the kernel gives another thread reaches a handler only
    when the main thread next runs Python); elsewhere (macOS), a handler and short waits."""
    ending = {signal.SIGTERM, signal.SIGINT}
    if hasattr(signal, "sigtimedwait"):
        signal.pthread_sigmask(signal.SIG_BLOCK, ending)
        return lambda timeout: signal.sigtimedwait(ending, timeout) is not None
    came = threading.Event()
    for sig in ending:
        signal.signal(sig, lambda *_: came.set())
    return lambda timeout: came.wait(min(timeout, SHUTDOWN_POLL_SECONDS))


def _end_with(parent: int) -> bool:
    """Have SIGTERM sent when the stack's process ends (Linux; elsewhere the poll in main
    sees it); False if it has ended already."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    return os.getppid() == parent


if __name__ == "__main__":
    sys.exit(main())
