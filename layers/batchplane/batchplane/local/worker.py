"""A worker process of ``batchplane local up``: some of the template's stream consumers on
the machine's second core.

One Python process is held to one core by its interpreter lock, and local mode's stack
was: the API, the scheduler, the launcher, the emulator and every stream consumer took
turns on it. A consumer that needs nothing of that process but the database runs here
instead, as its Lambda function runs apart from the others on AWS: the publisher (the
table's stream -> "Batch Job State Change" events), which reads the embedded store's
file (SQLite, shared between processes), keeps its place in it, and puts its events on
the emulator's bus through its port.

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
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import boto3

from .. import wiring
from ..store.sqlite import SqliteStore
from .router import Router
from .template import Template

FUNCTIONS = ("PublisherFunction",)  # the consumers a worker runs
POLL_SECONDS = 0.01  # how often it looks for the stack's commits (it cannot be woken by them)
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="worker: %(levelname)s %(name)s: %(message)s")
    if not _end_with(args.parent):
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())  # Ctrl-C reaches the whole group: the stack stops us
    store = SqliteStore(args.database)
    wiring.register_store(store)
    router = Router(Template.load(args.template), args.table, {}, store=store, sqs=boto3.client("sqs"))
    router.start_streams(args.function)
    watcher = threading.Thread(target=store.follow, args=(stop, POLL_SECONDS), name="follow", daemon=True)
    watcher.start()
    while not stop.wait(1.0):
        if os.getppid() != args.parent:
            break
    stop.set()
    router.stop()
    watcher.join(timeout=5)
    store.close()
    return 0


def _end_with(parent: int) -> bool:
    """Have SIGTERM sent when the stack's process ends (Linux; elsewhere the poll in main
    sees it); False if it has ended already."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    return os.getppid() == parent


if __name__ == "__main__":
    sys.exit(main())
