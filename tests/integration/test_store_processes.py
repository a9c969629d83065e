"""The embedded store's file shared by two processes, as `local up` and its worker share it
(local/worker.py): writes from both go through (one waits for the other's lock rather
than fail), and a process following the file hears of the other's commits."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from typing import TYPE_CHECKING

from batchplane.store.dynamodb import Item
from batchplane.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from pathlib import Path

WRITES = 300
_WRITER = textwrap.dedent("""
    import sys
    from batchplane.store.dynamodb import Item
    from batchplane.store.sqlite import SqliteStore
    store = SqliteStore(sys.argv[1])
    for i in range(int(sys.argv[2])):
        store.put_new(Item(pk=f"other#{i}", sk="#", doc={"i": i}))
    store.close()
""")


def test_two_processes_write_one_file_and_each_write_lands(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    store = SqliteStore(path)
    other = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(WRITES)],
                             stderr=subprocess.PIPE, text=True)
    for i in range(WRITES):
        store.transact([store.put_new_op(Item(pk=f"mine#{i}", sk="#", doc={"i": i}))])
    _, errors = other.communicate(timeout=120)
    assert other.returncode == 0, errors
    assert store.item_count() == 2 * WRITES
    # Each change has its stream record, numbered in one sequence across both.
    records = store.records(0, 10 * WRITES)
    assert len(records) == 2 * WRITES
    assert [seq for seq, _ in records] == sorted({seq for seq, _ in records})
    store.close()


def test_a_follower_is_woken_by_the_other_process_commits(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    follower = SqliteStore(path)
    woken = follower.listen()
    stop = threading.Event()
    watcher = threading.Thread(target=follower.follow, args=(stop, 0.01), daemon=True)
    watcher.start()
    try:
        assert not woken.wait(0.1)  # nothing committed yet
        subprocess.run([sys.executable, "-c", _WRITER, str(path), "1"], check=True, timeout=60)
        assert woken.wait(10)
        assert follower.get("other#0", "#") is not None
    finally:
        stop.set()
        watcher.join(timeout=5)
        follower.close()
