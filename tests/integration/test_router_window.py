"""The embedded store's stream mappings honour MaximumBatchingWindowInSeconds, as Lambda's
poller does: records that follow the first within the window join its batch, up to
BatchSize; with no window a record goes at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from batchplane.local.router import Router, _Mapping
from batchplane.local.template import Template
from batchplane.store import Item
from batchplane.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]


def _router(store: SqliteStore) -> tuple[Router, _Mapping]:
    router = Router(Template.load(ROOT / "template.yaml"), "batchplane", {}, store=store)
    fn = router.functions["PublisherFunction"]
    return router, _Mapping(fn, {"BatchSize": 3, "MaximumBatchingWindowInSeconds": 30}, "TableStream")


def _write(store: SqliteStore, n: int) -> None:
    store.put_new(Item(pk=f"JOB#{n}", sk="JOB", doc={"n": n}))


def test_records_within_the_window_join_the_batch_until_it_is_full() -> None:
    store = SqliteStore()
    router, mapping = _router(store)
    woken = store.listen()
    _write(store, 0)
    first = store.records(0, mapping.batch_size)
    later = threading.Timer(0.05, lambda: [_write(store, n) for n in (1, 2, 3)])
    later.start()
    began = time.monotonic()
    batch = router._fill_window(mapping, woken, first)
    later.join()
    assert [seq for seq, _ in batch] == [1, 2, 3]  # full at BatchSize, long before 30 s
    assert time.monotonic() - began < 25


def test_the_window_ends_the_wait_and_no_window_waits_for_nothing() -> None:
    store = SqliteStore()
    router, mapping = _router(store)
    woken = store.listen()
    _write(store, 0)
    mapping.window = 0.2
    began = time.monotonic()
    assert len(router._fill_window(mapping, woken, store.records(0, 3))) == 1
    assert time.monotonic() - began >= 0.2
    mapping.window = 0
    _write(store, 1)
    assert len(router._fill_window(mapping, woken, store.records(1, 3))) == 1
