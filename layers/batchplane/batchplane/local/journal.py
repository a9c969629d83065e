"""The emulator's write-ahead journal: what a kill -9 must not lose of S3 and CloudWatch Logs.

The emulator saves its backends whole now and then (``Emulator.save``); a write answered
between two saves would be lost by a kill -9. So every write to S3 (an object a job put)
or to CloudWatch Logs (a job's output) is appended here before it is answered, and a
start loads the last save and serves the journal's requests after it again, in order.

A save starts a new journal file (``emulator.journal.<n>``, with requests held back, so
the save holds exactly what the files before it hold), writes its snapshot naming that
file, then deletes the older ones. A start replays the files from the one its snapshot
names; a record cut short by the kill is one nobody was answered for, and is skipped.

Appends are plain writes, not fsync'd: a killed process loses nothing the kernel has,
which is what local mode promises (as its SQLite store, a machine that loses power may
lose the last writes).
"""

from __future__ import annotations

import os
import pickle
import re
import struct
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

_FRAME = struct.Struct(">Q")  # each record's length, before it
_SIGNED_FOR = re.compile(r"Credential=[^/&,]+/\d{8}/[^/&,]+/([^/&,]+)/aws4_request")
_S3_WRITES = frozenset({"PUT", "POST", "DELETE"})
# CloudWatch Logs actions that change nothing: the rest are journaled.
_LOGS_READS = ("Describe", "Get", "List", "Filter", "Test", "StartQuery", "StopQuery", "StartLiveTail")


def journaled(environ: dict[str, Any]) -> bool:
    """Whether a request to the emulator is one the journal keeps: a write to S3 or Logs."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("Logs_"):
        return not target.partition(".")[2].startswith(_LOGS_READS)
    return environ.get("REQUEST_METHOD") in _S3_WRITES and _service(environ) == "s3"


def _service(environ: dict[str, Any]) -> str | None:
    """The service a request is for, as moto routes it: by its SigV4 signing name (a
    presigned URL has it in its query); S3 when it has none (SigV2, as boto3 presigns
    S3 URLs by default, or anonymous), unless it names an action of a JSON or query API."""
    signed = _SIGNED_FOR.search(environ.get("HTTP_AUTHORIZATION", "")) or _SIGNED_FOR.search(
        unquote(environ.get("QUERY_STRING", "")))
    if signed is not None:
        return signed.group(1)
    if environ.get("HTTP_X_AMZ_TARGET") or environ.get("CONTENT_TYPE", "").startswith(
            "application/x-www-form-urlencoded"):
        return None
    return "s3"


class Journal:
    """The journal files beside the emulator's snapshot, ``<stem>.journal.<n>``."""

    def __init__(self, snapshot: Path) -> None:
        self._directory = snapshot.parent
        self._prefix = f"{snapshot.stem}.journal."
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.number = 0  # the file appends go to

    def files(self) -> list[tuple[int, Path]]:
        found = []
        for path in self._directory.glob(f"{self._prefix}*"):
            suffix = path.name.removeprefix(self._prefix)
            if suffix.isdigit():
                found.append((int(suffix), path))
        return sorted(found)

    def records(self, since: int) -> Iterator[tuple[dict[str, str], bytes]]:
        """The requests journaled in files ``since`` and later, in order: their WSGI
        environ's strings, and their body."""
        for number, path in self.files():
            if number < since:
                continue
            data = path.read_bytes()
            at = 0
            while at + _FRAME.size <= len(data):
                (size,) = _FRAME.unpack_from(data, at)
                start = at + _FRAME.size
                if start + size > len(data):
                    break  # cut short by a kill: its request was never answered
                yield pickle.loads(data[start:start + size])  # noqa: S301 - our own file, in the user's data directory
                at = start + size

    def open(self, number: int) -> None:
        """Append from now on to file ``number`` (made if missing)."""
        path = self._directory / f"{self._prefix}{number}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with self._lock:
            old, self._fd, self.number = self._fd, fd, number
        if old is not None:
            os.close(old)

    def append(self, environ: dict[str, Any], body: bytes) -> None:
        fields = {k: v for k, v in environ.items() if isinstance(v, str)}
        record = pickle.dumps((fields, body), protocol=pickle.HIGHEST_PROTOCOL)
        frame = _FRAME.pack(len(record)) + record
        with self._lock:
            if self._fd is None:
                return
            view = memoryview(frame)
            while view:
                view = view[os.write(self._fd, view):]

    def rotate(self) -> int:
        """Start the next file; the number a snapshot taken now replays from."""
        self.open(self.number + 1)
        return self.number

    def prune(self, below: int) -> None:
        """Delete the files a snapshot holds."""
        for number, path in self.files():
            if number < below:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
