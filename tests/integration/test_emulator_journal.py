"""The emulator's journal: an S3 or CloudWatch Logs write answered since the last save
survives a crash (the emulator stopped without saving, as a kill -9 leaves it), once."""

from __future__ import annotations

import pickle
import time
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import requests
from batchplane.local.emulator import Emulator
from batchplane.local.journal import Journal

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")


class Run:
    """One run of the emulator on a data directory; ``crash`` ends it without a save."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.emulator = Emulator()
        self.endpoint = self.emulator.start()
        self.emulator.load(state)

    def client(self, service: str, *, attached: bool = False) -> Any:
        client = boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1")
        return self.emulator.attach(client) if attached else client

    def save(self) -> None:
        assert self.emulator.save(self.state)

    def crash(self) -> None:
        self.emulator.stop()


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "emulator.pickle"


def _objects(s3: Any, bucket: str) -> dict[str, bytes]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def _messages(logs: Any, stream: str) -> list[str]:
    events = logs.get_log_events(logGroupName="/jobs", logStreamName=stream, startFromHead=True)["events"]
    return [e["message"] for e in events]


def _write_some(run: Run, tag: str) -> None:
    """Objects put through the port and in-process, one put by a presigned URL, one
    deleted, and log events through both paths (the launcher's are in-process)."""
    s3 = run.client("s3")
    s3.put_object(Bucket="results", Key=f"{tag}/port", Body=b"from a job")
    run.client("s3", attached=True).put_object(Bucket="results", Key=f"{tag}/attached", Body=b"in-process")
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "results", "Key": f"{tag}/presigned"})
    assert requests.put(url, data=b"presigned", timeout=10).status_code == 200
    s3.put_object(Bucket="results", Key=f"{tag}/gone", Body=b"x")
    s3.delete_object(Bucket="results", Key=f"{tag}/gone")
    run.client("logs").create_log_stream(logGroupName="/jobs", logStreamName=tag)
    for i, logs in enumerate((run.client("logs"), run.client("logs", attached=True))):
        logs.put_log_events(logGroupName="/jobs", logStreamName=tag,
                            logEvents=[{"timestamp": int(time.time() * 1000) + i, "message": f"{tag} line {i}"}])


def _first_run(state: Path) -> None:
    run = Run(state)
    run.client("s3").create_bucket(Bucket="results")
    run.client("logs").create_log_group(logGroupName="/jobs")
    run.save()
    _write_some(run, "a")  # after the save: only the journal has these
    run.crash()


def _check(run: Run, *tags: str) -> None:
    s3, logs = run.client("s3"), run.client("logs")
    assert _objects(s3, "results") == {
        key: body for tag in tags for key, body in
        ((f"{tag}/port", b"from a job"), (f"{tag}/attached", b"in-process"), (f"{tag}/presigned", b"presigned"))}
    for tag in tags:  # each line once: nothing served again that a save already held
        assert _messages(logs, tag) == [f"{tag} line 0", f"{tag} line 1"]


def test_writes_answered_after_the_last_save_survive_a_crash(state: Path) -> None:
    _first_run(state)
    run = Run(state)
    try:
        _check(run, "a")
    finally:
        run.crash()


def test_a_save_holds_the_journal_so_far_and_nothing_is_served_twice(state: Path) -> None:
    _first_run(state)
    run = Run(state)  # replays "a"
    run.save()  # holds "a": its journal file goes
    files = Journal(state).files()
    assert len(files) == 1 and files[0][1].stat().st_size == 0
    _write_some(run, "b")
    run.crash()
    run = Run(state)
    try:
        _check(run, "a", "b")
    finally:
        run.crash()
    # Two crashes in a row: the replayed requests are in their files until a save.
    run = Run(state)
    try:
        _check(run, "a", "b")
    finally:
        run.crash()


def test_a_record_cut_short_by_the_kill_is_skipped(state: Path) -> None:
    _first_run(state)
    number, last = Journal(state).files()[-1]
    record = pickle.dumps(({"REQUEST_METHOD": "PUT"}, b"never answered"))
    with last.open("ab") as f:  # its length, and half of it: the kill came mid-write
        f.write(len(record).to_bytes(8, "big") + record[: len(record) // 2])
    run = Run(state)
    try:
        _check(run, "a")
        assert Journal(state).files()[-1][0] == number + 1  # appends go on in a new file
    finally:
        run.crash()


def test_reads_are_not_journaled(state: Path) -> None:
    _first_run(state)
    run = Run(state)
    try:
        (_, current), = [f for f in Journal(state).files() if f[0] == max(n for n, _ in Journal(state).files())]
        s3, logs = run.client("s3"), run.client("logs", attached=True)
        _objects(s3, "results")
        s3.head_bucket(Bucket="results")
        logs.describe_log_groups()
        _messages(logs, "a")
        assert current.stat().st_size == 0
        s3.put_object(Bucket="results", Key="a/more", Body=b"1")
        assert current.stat().st_size > 0
    finally:
        run.crash()


def test_a_snapshot_saved_before_the_journal_still_loads(state: Path) -> None:
    run = Run(state)
    run.client("s3").create_bucket(Bucket="old")
    run.client("s3").put_object(Bucket="old", Key="k", Body=b"v")
    run.save()
    run.crash()
    saved = pickle.loads(state.read_bytes())  # noqa: S301 - the test's own file
    state.write_bytes(pickle.dumps(saved["services"]))  # the format of earlier versions
    for _, path in Journal(state).files():
        path.unlink()
    run = Run(state)
    try:
        assert _objects(run.client("s3"), "old") == {"k": b"v"}
    finally:
        run.crash()
