"""`local up`'s worker process (local/worker.py): it runs the publisher's stream mapping,
which the stack's own process then leaves alone, and it ends with the stack, kill -9
included."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from batchplane.local import worker

from .test_restart import UpProcess

if TYPE_CHECKING:
    from batchplane.local.stack import LocalStack


def _workers_of(parent: int) -> list[int]:
    """The worker processes whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (b"batchplane.local.worker" in argv and b"--parent" in argv
                and argv[argv.index(b"--parent") + 1] == str(parent).encode()):
            found.append(int(entry.name))
    return found


def test_the_publisher_runs_in_the_worker_and_only_there(stack: LocalStack) -> None:
    assert stack.worker is not None and stack.worker.poll() is None
    assert _workers_of(os.getpid()) == [stack.worker.pid]
    # In this process: the stream mappings of every consumer but the worker's.
    assert worker.FUNCTIONS == ("PublisherFunction",)
    mine = [t.name for t in threading.enumerate() if t.name.startswith("stream-")]
    assert mine == ["stream-TableStream"]  # the scheduler's


def test_the_worker_ends_with_a_stack_killed_under_it(tmp_path: Path) -> None:
    stack = UpProcess(tmp_path / "state").start()
    assert stack.process is not None
    parent = stack.process.pid
    deadline = time.monotonic() + 60
    while not _workers_of(parent):
        assert time.monotonic() < deadline, "no worker started"
        time.sleep(0.05)
    stack.kill()
    deadline = time.monotonic() + 10
    while _workers_of(parent):
        assert time.monotonic() < deadline, "the worker outlived its stack"
        time.sleep(0.05)
