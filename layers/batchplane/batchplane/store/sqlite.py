"""The embedded store of local mode: the table of store/dynamodb.py in one SQLite file.

Same items, same keys, same semantics as the DynamoDB adapter, so the services cannot
tell them apart (tests/contract holds both to one suite):

- an item is its key (``pk``, ``sk``), its top-level attributes (``attrs``, JSON: version,
  status, counters...) and its document (``doc``, JSON; none for counter items);
- ``gsi1`` is a real index on (gsi1pk, gsi1sk), sparse as DynamoDB's: only items with both
  attributes are in it;
- conditional writes and all-or-nothing transactions run inside one SQLite transaction
  each; a failed condition is ConflictError and writes nothing;
- every change appends its stream record (INSERT / MODIFY / REMOVE with the old and new
  item) to ``stream`` in the same transaction, so a change and its record are committed
  together or not at all. ``records`` hands them out in DynamoDB stream record shape;
  consumers keep their place in ``checkpoints``;
- ``expire`` deletes items whose ``expiresAt`` (DynamoDB's TTL attribute) has passed, with
  REMOVE records marked as the TTL service's, as DynamoDB does.

One connection, one lock in each process: SQLite serializes writers anyway. A worker
process of local mode (local/worker.py) opens the same file for its stream consumers;
``follow`` tells it of the other process's commits. WAL with ``synchronous=NORMAL``: a
committed transaction survives the process being killed (kill -9); only a power cut may
lose the last ones.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import sqlite3
import threading
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from ..clock import now_ms
from ..errors import ClientException, ConflictError
from .dynamodb import Item, _from_dynamo, _to_dynamo, in_listing

_TOP = "\U0010ffff"  # sorts after every character a key can have: the end of a prefix range
TTL_ATTRIBUTE = "expiresAt"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    attrs TEXT NOT NULL,
    doc TEXT,
    gsi1pk TEXT,
    gsi1sk TEXT,
    expires_at INTEGER,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk)
    WHERE gsi1pk IS NOT NULL AND gsi1sk IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_ttl ON items (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS stream (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_name TEXT NOT NULL,
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    old TEXT,
    new TEXT,
    at INTEGER NOT NULL,
    by_ttl INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS checkpoints (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""
_BAD_TOKEN = "The nextToken is not valid: use the value a listing returned."
MAX_TRANSACTION_ITEMS = 100  # TransactWriteItems' limit
BUSY_TIMEOUT_MS = 10_000  # how long a write waits for another process's (local/worker.py)


@dataclass(frozen=True)
class _Put:
    """Write a whole item: new (``expected`` None: refused if it exists) or replacing the
    version ``expected``."""

    pk: str
    sk: str
    attrs: dict[str, Any]
    doc: str | None
    expected: int | None


@dataclass(frozen=True)
class _Add:
    """Add to counters, each kept <= its limit (where one is given)."""

    pk: str
    sk: str
    deltas: dict[str, int]
    limits: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Check:
    """No write: the item's ``attribute`` is missing or not one of ``not_in``."""

    pk: str
    sk: str
    attribute: str
    not_in: tuple[str, ...]


@dataclass(frozen=True)
class _Delete:
    pk: str
    sk: str
    expected: int | None = None


_Op = _Put | _Add | _Check | _Delete


_BY_JSON = " "  # leads the text of what orjson would not write: read back by json too


def _dumps(value: Any) -> str:
    """Compact JSON: orjson's, 2.7x json's on a job's document (a scheduling round reads
    hundreds). What it refuses, json writes, marked: a string holding a lone surrogate
    (a JSON body's "\\ud800" gives one) and an integer past 64 bits, which orjson would
    also read back as a float."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return _BY_JSON + json.dumps(value, separators=(",", ":"))


def _loads(text: str) -> Any:
    if text.startswith(_BY_JSON):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # a lone surrogate's escape, written by json before orjson


def _attrs(item: Item) -> dict[str, Any]:
    """An item's top-level attributes but its key and document (None ones left out, as
    DynamoDB has no null attributes written by the DynamoDB adapter), as DynamoDB's
    numbers read back: a whole float an int, a tuple a list."""
    raw = {"version": item.version, "gsi1pk": item.gsi1pk, "gsi1sk": item.gsi1sk, **item.extra}
    return _from_dynamo(_to_dynamo({k: v for k, v in raw.items() if v is not None}))


def _expiry(attrs: dict[str, Any]) -> int | None:
    value = attrs.get(TTL_ATTRIBUTE)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class SqliteStore:
    """The store port (see ``store/__init__.py``) on one SQLite database."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        self._listeners: list[threading.Event] = []
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Another process on the same file (local/worker.py) may hold the write lock
            # a moment: wait for it rather than fail with "database is locked".
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- single items -------------------------------------------------------------------

    def get(self, pk: str, sk: str, consistent: bool = True) -> Item | None:  # noqa: ARG002 - always consistent
        with self._lock:
            row = self._db.execute(
                "SELECT pk, sk, attrs, doc FROM items WHERE pk = ? AND sk = ?", (pk, sk)
            ).fetchone()
        return _item(row) if row else None

    def batch_get(self, keys: list[tuple[str, str]]) -> list[Item]:
        found = []
        with self._lock:
            for pk, sk in dict.fromkeys(keys):
                row = self._db.execute(
                    "SELECT pk, sk, attrs, doc FROM items WHERE pk = ? AND sk = ?", (pk, sk)
                ).fetchone()
                if row:
                    found.append(_item(row))
        return found

    def put_new(self, item: Item) -> None:
        self.transact([self.put_new_op(item)])

    def replace(self, item: Item) -> None:
        expected = item.version
        try:
            self.transact([self.replace_op(item)])
        except ConflictError:
            item.version = expected
            raise

    def delete(self, pk: str, sk: str, expected_version: int | None = None) -> None:
        self.transact([_Delete(pk, sk, expected_version)])

    def transact_or_put(self, op: _Op) -> None:
        self.transact([op])

    def counters(self, pk: str, sk: str) -> dict[str, int]:
        with self._lock:
            row = self._db.execute("SELECT attrs FROM items WHERE pk = ? AND sk = ?", (pk, sk)).fetchone()
        attrs = _loads(row[0]) if row else {}
        return {k: int(v) for k, v in attrs.items() if isinstance(v, int | float)}

    # -- transactions -------------------------------------------------------------------

    def put_new_op(self, item: Item) -> _Put:
        item.version = 1
        return _Put(item.pk, item.sk, _attrs(item), _dumps(item.doc), None)

    def replace_op(self, item: Item) -> _Put:
        expected = item.version
        item.version = expected + 1
        return _Put(item.pk, item.sk, _attrs(item), _dumps(item.doc), expected)

    def add_op(self, pk: str, sk: str, deltas: dict[str, int], limits: dict[str, int] | None = None) -> _Add:
        return _Add(pk, sk, dict(deltas), dict(limits or {}))

    def check_op(self, pk: str, sk: str, attribute: str, not_in: tuple[str, ...]) -> _Check:
        return _Check(pk, sk, attribute, tuple(not_in))

    def transact(self, ops: list[_Op]) -> None:
        """All or nothing; ConflictError when a condition fails (nothing is written)."""
        # What DynamoDB refuses as invalid (ValidationException) is refused here too, so
        # that local mode does not accept a transaction AWS would not.
        keys = [(op.pk, op.sk) for op in ops]
        if len(set(keys)) != len(keys):
            raise ValueError("a transaction may touch each item only once")
        if len(ops) > MAX_TRANSACTION_ITEMS:
            raise ValueError(f"a transaction may have at most {MAX_TRANSACTION_ITEMS} entries")
        at = now_ms()
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                wrote = False
                for op in ops:
                    wrote |= self._apply(op, at)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        if wrote:
            self._notify()

    def _apply(self, op: _Op, at: int) -> bool:
        """One entry of a transaction; False when it changed nothing."""
        db = self._db
        row = db.execute("SELECT pk, sk, attrs, doc FROM items WHERE pk = ? AND sk = ?", (op.pk, op.sk)).fetchone()
        old: dict[str, Any] | None = _loads(row[2]) if row else None
        if isinstance(op, _Check):
            if old is not None and old.get(op.attribute) in op.not_in:
                raise ConflictError(f"{op.pk}/{op.sk}: {op.attribute} is {old.get(op.attribute)}")
            return False
        if isinstance(op, _Delete):
            if op.expected is not None and (old is None or old.get("version") != op.expected):
                raise ConflictError(f"{op.pk}/{op.sk} is not at version {op.expected}")
            if row is None or old is None:
                return False
            db.execute("DELETE FROM items WHERE pk = ? AND sk = ?", (op.pk, op.sk))
            self._record("REMOVE", op.pk, op.sk, (old, row[3]), None, at)
            return True
        if isinstance(op, _Put):
            if op.expected is None and row is not None:
                raise ConflictError(f"{op.pk}/{op.sk} exists")
            if op.expected is not None and (old is None or old.get("version") != op.expected):
                raise ConflictError(f"{op.pk}/{op.sk} is not at version {op.expected}")
            attrs, doc = op.attrs, op.doc
        else:
            attrs = dict(old or {})
            for name, delta in op.deltas.items():
                value = attrs.get(name, 0) + delta
                limit = op.limits.get(name)
                if limit is not None and name in attrs and value > limit:
                    raise ConflictError(f"{op.pk}/{op.sk}: {name} would exceed {limit}")
                attrs[name] = value
            doc = row[3] if row else None
            if attrs == old:
                return False
        db.execute(
            "INSERT OR REPLACE INTO items (pk, sk, attrs, doc, gsi1pk, gsi1sk, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (op.pk, op.sk, _dumps(attrs), doc, attrs.get("gsi1pk"), attrs.get("gsi1sk"), _expiry(attrs)),
        )
        before = (old, row[3]) if row and old is not None else None
        self._record("MODIFY" if row else "INSERT", op.pk, op.sk, before, (attrs, doc), at)
        return True

    def _record(self, event: str, pk: str, sk: str, old: tuple[dict[str, Any], str | None] | None,
                new: tuple[dict[str, Any], str | None] | None, at: int, *, by_ttl: bool = False) -> None:
        self._db.execute(
            "INSERT INTO stream (event_name, pk, sk, old, new, at, by_ttl) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event, pk, sk, _image_text(old), _image_text(new), at, int(by_ttl)),
        )

    # -- listings -----------------------------------------------------------------------

    def query_index(
        self,
        gsi1pk: str,
        *,
        limit: int | None = None,
        token: str | None = None,
        begins_with: str | None = None,
        between: tuple[str, str] | None = None,
        forward: bool = True,
    ) -> tuple[list[Item], str | None]:
        """Items of one listing partition in gsi1sk order, a page at a time; the token is
        given only when more items follow."""
        # "gsi1sk IS NOT NULL" lets SQLite use the (partial) index: without it every
        # listing was a scan of the whole table.
        where = ["gsi1pk = ? AND gsi1sk IS NOT NULL"]
        args: list[Any] = [gsi1pk]
        if begins_with:
            where.append("gsi1sk >= ? AND gsi1sk < ?")
            args += [begins_with, begins_with + _TOP]
        elif between:
            where.append("gsi1sk BETWEEN ? AND ?")
            args += list(between)
        start = _decode_token(token)
        if start:
            # As DynamoDB: a token of another listing is refused (see DynamoStore.query_index).
            if start[0] != gsi1pk or not in_listing(start[1], begins_with, between):
                raise ClientException(_BAD_TOKEN)
            where.append("(gsi1sk, pk, sk) > (?, ?, ?)" if forward else "(gsi1sk, pk, sk) < (?, ?, ?)")
            args += start[1:]
        order = "ASC" if forward else "DESC"
        sql = (f"SELECT pk, sk, attrs, doc, gsi1sk FROM items WHERE {' AND '.join(where)} "
               f"ORDER BY gsi1sk {order}, pk {order}, sk {order}")
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit + 1)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        more = limit is not None and len(rows) > limit
        rows = rows[:limit] if limit is not None else rows
        items = [_item(r) for r in rows]
        token_out = _encode_token([gsi1pk, rows[-1][4], rows[-1][0], rows[-1][1]]) if more and rows else None
        return items, token_out

    def query_partition(self, pk: str, sk_prefix: str, forward: bool = True, raw: bool = False) -> list[Any]:
        order = "ASC" if forward else "DESC"
        with self._lock:
            rows = self._db.execute(
                f"SELECT pk, sk, attrs, doc FROM items WHERE pk = ? AND sk >= ? AND sk < ? ORDER BY sk {order}",
                (pk, sk_prefix, sk_prefix + _TOP),
            ).fetchall()
        return [_raw(r) if raw else _item(r) for r in rows]

    def item_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    # -- TTL ----------------------------------------------------------------------------

    def expire(self, now_seconds: int | None = None, batch: int = 500) -> int:
        """Delete the items whose TTL has passed, as DynamoDB's TTL process does (each with
        a REMOVE record by the service); returns how many."""
        cutoff = now_ms() // 1000 if now_seconds is None else now_seconds
        done = 0
        while True:
            with self._lock:
                db = self._db
                db.execute("BEGIN IMMEDIATE")
                try:
                    rows = db.execute(
                        "SELECT pk, sk, attrs, doc FROM items WHERE expires_at IS NOT NULL AND expires_at < ? LIMIT ?",
                        (cutoff, batch),
                    ).fetchall()
                    at = now_ms()
                    for pk, sk, attrs, doc in rows:
                        db.execute("DELETE FROM items WHERE pk = ? AND sk = ?", (pk, sk))
                        self._record("REMOVE", pk, sk, (_loads(attrs), doc), None, at, by_ttl=True)
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            done += len(rows)
            if rows:
                self._notify()
            if len(rows) < batch:
                return done

    # -- the change stream --------------------------------------------------------------

    def listen(self) -> threading.Event:
        """An event set after every commit that appended stream records."""
        event = threading.Event()
        with self._lock:
            self._listeners.append(event)
        return event

    def _notify(self) -> None:
        for event in self._listeners:
            event.set()

    def follow(self, stop: threading.Event, interval: float) -> None:
        """Until ``stop``: wake the listeners when another process's commits appended
        stream records (this process's own wake them at once), looking every ``interval``."""
        seen = self.last_sequence()
        while not stop.wait(interval):
            last = self.last_sequence()
            if last != seen:
                seen = last
                self._notify()

    def last_sequence(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MAX(seq) FROM stream").fetchone()
        return int(row[0] or 0)

    def records(self, after: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Up to ``limit`` stream records after sequence ``after``, oldest first, each as
        Lambda receives a DynamoDB stream record."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_name, pk, sk, old, new, at, by_ttl FROM stream WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [(row[0], _stream_record(*row)) for row in rows]

    def checkpoint(self, consumer: str) -> int | None:
        """The last sequence ``consumer`` has handled, if it ever saved one."""
        with self._lock:
            row = self._db.execute("SELECT seq FROM checkpoints WHERE consumer = ?", (consumer,)).fetchone()
        return int(row[0]) if row else None

    def save_checkpoint(self, consumer: str, seq: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO checkpoints (consumer, seq) VALUES (?, ?) "
                "ON CONFLICT (consumer) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                (consumer, seq),
            )

    def trim_stream(self, consumers: list[str]) -> int:
        """Forget the records every one of ``consumers`` has handled; how many."""
        with self._lock:
            marks = [self.checkpoint(c) for c in consumers]
            handled = [m for m in marks if m is not None]
            if not marks or len(handled) < len(marks):
                return 0
            return self._db.execute("DELETE FROM stream WHERE seq <= ?", (min(handled),)).rowcount


def _item(row: tuple[Any, ...]) -> Item:
    attrs = _loads(row[2])
    extra = {k: v for k, v in attrs.items() if k not in ("version", "gsi1pk", "gsi1sk")}
    return Item(
        pk=row[0], sk=row[1], doc=_loads(row[3]) if row[3] is not None else {},
        version=int(attrs.get("version", 0)), gsi1pk=attrs.get("gsi1pk"), gsi1sk=attrs.get("gsi1sk"),
        extra=extra,
    )


def _raw(row: tuple[Any, ...]) -> dict[str, Any]:
    """An item as plain attributes (``doc`` included when it has one), as
    ``DynamoStore.query_partition(raw=True)`` returns it."""
    out = {"pk": row[0], "sk": row[1], **_loads(row[2])}
    if row[3] is not None:
        out["doc"] = _loads(row[3])
    return out


def _image_text(image: tuple[dict[str, Any], str | None] | None) -> str | None:
    if image is None:
        return None
    attrs, doc = image
    return _dumps({"attrs": attrs, "doc": doc})


def _wire_image(pk: str, sk: str, text: str) -> dict[str, Any]:
    """A stored image in the stream's wire shape, ``doc`` compressed as the DynamoDB
    adapter stores it (base64 text, as Lambda's JSON carries binary attributes)."""
    image = _loads(text)
    out = {"pk": {"S": pk}, "sk": {"S": sk}, **{k: _wire(v) for k, v in image["attrs"].items()}}
    if image["doc"] is not None:
        out["doc"] = {"B": base64.b64encode(zlib.compress(image["doc"].encode(), 1)).decode()}
    return out


def _wire(value: Any) -> dict[str, Any]:
    """A plain value in DynamoDB's attribute value format, as the DynamoDB adapter's
    ``serialize`` writes it (boto3's TypeSerializer, several times slower, was a tenth of
    local mode's CPU in building stream records)."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float):
        return {"N": _number(value)}
    if value is None:
        return {"NULL": True}
    if isinstance(value, dict):
        return {"M": {k: _wire(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [_wire(v) for v in value]}
    raise TypeError(f"no DynamoDB type for {type(value).__name__}")


def _number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    return "NaN" if math.isnan(value) else str(Decimal(repr(value)).normalize())


def _stream_record(seq: int, event: str, pk: str, sk: str, old: str | None, new: str | None,  # noqa: PLR0917 - a stream row's columns, in order: called as _stream_record(*row)
                   at: int, by_ttl: int) -> dict[str, Any]:
    change: dict[str, Any] = {
        "ApproximateCreationDateTime": at // 1000,
        "Keys": {"pk": {"S": pk}, "sk": {"S": sk}},
        "SequenceNumber": f"{seq:021d}",
        "SizeBytes": len(old or "") + len(new or ""),
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        change["NewImage"] = _wire_image(pk, sk, new)
    if old is not None:
        change["OldImage"] = _wire_image(pk, sk, old)
    record: dict[str, Any] = {
        "eventID": f"{seq:032x}",
        "eventName": event,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "dynamodb": change,
    }
    if by_ttl:
        record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return record


def _encode_token(key: list[str]) -> str:
    return base64.urlsafe_b64encode(_dumps(key).encode()).decode()


def _decode_token(token: str | None) -> list[str] | None:
    """A listing's nextToken back to its start key; anything not made by ``_encode_token``
    is a ClientException."""
    if not token:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError, RecursionError, binascii.Error) as e:
        raise ClientException(_BAD_TOKEN) from e
    # gsi1pk, gsi1sk, pk, sk: strings SQLite can store (a lone surrogate is not UTF-8).
    if not (isinstance(key, list) and len(key) == 4 and all(isinstance(k, str) for k in key)):  # noqa: PLR2004 - the four keys the comment above names
        raise ClientException(_BAD_TOKEN)
    try:
        "".join(key).encode()
    except UnicodeEncodeError as e:
        raise ClientException(_BAD_TOKEN) from e
    return key
