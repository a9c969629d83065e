"""DynamoDB adapter: one table, optimistic versions, conditional writes.

Item layout (``pk`` / ``sk``; ``gsi1pk`` / ``gsi1sk`` for listings). Each kind of item is
written only by its repository, the module of store/ on its line, so that the services
never see a key; a job's listing sorts by rank (0: a retried RUNNABLE job, at the front
of its queue), then createdAt, then id:

====================  ===================  ====================  ========================================  ============
entity                pk                   sk                    gsi1pk / gsi1sk                           module
====================  ===================  ====================  ========================================  ============
compute environment   ``CE#<name>``        ``#``                 ``CE`` / name                             resources
CE usage counters     ``CE#<name>``        ``USAGE``             -                                         usage
job queue             ``JQ#<name>``        ``#``                 ``JQ`` / name                             resources
scheduling policy     ``SP#<name>``        ``#``                 ``SP`` / name                             resources
job definition        ``JD#<name>``        ``REV#<rev:08>``      ``JD`` / name#rev                         resources
job definition head   ``JD#<name>``        ``#`` (latest rev)    -                                         resources
job                   ``JOB#<id>``         ``JOB``               ``JOBS#<queue>#<status>`` / rank+time#id  jobs
array child counters  ``ARRAY#<parent>``   ``COUNT#<shard:02>``  -                                         arrays
array chunk marker    ``ARRAY#<parent>``   ``CHUNK#<first:06>``  -                                         arrays
dependency edge       ``DEPS#<job id>``    ``JOB#<dependent>``   -                                         dependencies
submit key            ``SUBMIT#<key>``     ``#``                 -                                         submit_keys
fair-share usage      ``SHARES#<queue>``   ``SHARE#<share>``     -                                         shares
trigger               ``TRIGGER#<name>``   ``#``                 ``TRIGGERS`` / bucket#name                triggers
schedule              ``SCHEDULE#<name>``  ``#``                 ``SCHEDULES`` / name                      triggers
====================  ===================  ====================  ========================================  ============

Every item carries ``doc`` (the entity exactly as the Batch API describes it) and
``version``; every change is a compare-and-swap on ``version`` so that two writers can
never both move a job out of the same state.

``doc`` is stored as zlib-compressed JSON (a binary attribute): DynamoDB bills writes per
KB of item (and again for each index copy), and a job's document compresses from about
1.5 KB to under half that, which keeps a job item in one write unit. Nothing queries or
filters on the document's fields; those the table needs (status, queue, ...) are
top-level attributes. A document stored as a map is still read.
"""

from __future__ import annotations

import base64
import json
import random
import time
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from ..domain.bookkeeping import Bookkeeping
from ..errors import ClientException, ConflictError

_ser = TypeSerializer()
BUSY_TRIES = 6  # sends of a write refused because a transaction held one of its items
_de = TypeDeserializer()
_BAD_TOKEN = "The nextToken is not valid: use the value a listing returned."
_KEY_ATTRIBUTES = {"pk", "sk", "gsi1pk", "gsi1sk"}


def _to_dynamo(value: Any) -> Any:
    # DynamoDB numbers are Decimals; JSON round-trip turns floats into them losslessly.
    return json.loads(json.dumps(value), parse_float=Decimal)


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in _to_dynamo(item).items() if v is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    """An item from the wire format (a stream record's image included) to plain values;
    a compressed ``doc`` comes back as the document."""
    out = _from_dynamo({k: _de.deserialize(v) for k, v in item.items() if k != "doc"})
    if "doc" in item:
        out["doc"] = decode_doc(item["doc"])
    return out


def encode_doc(doc: dict[str, Any]) -> dict[str, bytes]:
    return {"B": zlib.compress(json.dumps(doc, separators=(",", ":")).encode())}


def decode_doc(value: Any) -> dict[str, Any]:
    """``doc`` as stored (``{"B": ...}`` or a map, in the wire format) or as a stream
    handler's deserialized image has it (bytes, Binary, base64 text or a dict)."""
    if isinstance(value, dict) and len(value) == 1 and ("B" in value or "M" in value):
        (kind, value), = value.items()
        if kind == "M":
            return _from_dynamo(_de.deserialize({"M": value}))
    if isinstance(value, Binary):
        value = value.value  # type: ignore[attr-defined]  # boto3-stubs leave out Binary.value
    if isinstance(value, str):
        value = base64.b64decode(value)  # Lambda's JSON carries binary attributes as base64
    if isinstance(value, bytes | bytearray):
        return json.loads(zlib.decompress(value))
    return _from_dynamo(value)


@dataclass
class Item:
    """One stored entity: its API document plus the bookkeeping around it."""

    pk: str
    sk: str
    doc: dict[str, Any]
    version: int = 0
    gsi1pk: str | None = None
    gsi1sk: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # top-level attributes (status, expiresAt, ...)

    @property
    def job(self) -> Bookkeeping:
        """A job item's bookkeeping: a typed view of ``extra`` (domain/bookkeeping.py)."""
        return Bookkeeping(self.extra)

    def to_dynamo(self) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "pk": self.pk,
            "sk": self.sk,
            "version": self.version,
            "gsi1pk": self.gsi1pk,
            "gsi1sk": self.gsi1sk,
        }
        raw.update(self.extra)
        return {**serialize(raw), "doc": encode_doc(self.doc)}

    @classmethod
    def from_dynamo(cls, raw: dict[str, Any]) -> Item:
        data = deserialize(raw)
        extra = {
            k: v
            for k, v in data.items()
            if k not in ("pk", "sk", "doc", "version", "gsi1pk", "gsi1sk")
        }
        return cls(
            pk=data["pk"],
            sk=data["sk"],
            doc=data.get("doc", {}),
            version=int(data.get("version", 0)),
            gsi1pk=data.get("gsi1pk"),
            gsi1sk=data.get("gsi1sk"),
            extra=extra,
        )


def encode_token(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def decode_token(token: str | None) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError, RecursionError) as e:
        raise ClientException(_BAD_TOKEN) from e
    # A start key of the gsi1 index: all four key attributes (the table's and the
    # index's), each a string DynamoDB takes (not empty, UTF-8), and nothing else.
    if not (isinstance(key, dict) and set(key) == _KEY_ATTRIBUTES and all(
            isinstance(v, dict) and list(v) == ["S"] and _key_string(v["S"]) for v in key.values())):
        raise ClientException(_BAD_TOKEN)
    return key


def _key_string(value: Any) -> bool:
    if not (isinstance(value, str) and value):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate, which JSON's \u escapes can carry
        return False
    return True


def in_listing(gsi1sk: str, begins_with: str | None, between: tuple[str, str] | None) -> bool:
    """Whether a listing's key condition holds for ``gsi1sk``: DynamoDB refuses a start key
    outside it (ValidationException), so a token must not name one. Python orders strings
    by code point, as DynamoDB does by UTF-8 bytes."""
    if begins_with:
        return gsi1sk.startswith(begins_with)
    if between:
        return between[0] <= gsi1sk <= between[1]
    return True


class DynamoStore:
    """Typed access to the table; knows keys and conditions, not Batch rules."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    # -- single items -----------------------------------------------------------------

    def get(self, pk: str, sk: str, consistent: bool = True) -> Item | None:
        out = self.client.get_item(
            TableName=self.table,
            Key=serialize({"pk": pk, "sk": sk}),
            ConsistentRead=consistent,
        )
        raw = out.get("Item")
        return Item.from_dynamo(raw) if raw else None

    def batch_get(self, keys: list[tuple[str, str]]) -> list[Item]:
        """Items for up to 100 keys, in no particular order; missing keys are skipped."""
        found: list[Item] = []
        pending = [serialize({"pk": pk, "sk": sk}) for pk, sk in dict.fromkeys(keys)]
        while pending:
            chunk, pending = pending[:100], pending[100:]
            request = {self.table: {"Keys": chunk, "ConsistentRead": True}}
            while request:
                out = self.client.batch_get_item(RequestItems=request)
                found += [Item.from_dynamo(r) for r in out["Responses"].get(self.table, [])]
                request = out.get("UnprocessedKeys") or {}
        return found

    def put_new(self, item: Item) -> None:
        """Create ``item``; ConflictError if one with the same key exists."""
        item.version = 1
        self._send(
            "put_item",
            TableName=self.table,
            Item=item.to_dynamo(),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def replace(self, item: Item) -> None:
        """Write ``item`` if nobody changed it since it was read (version check)."""
        expected = item.version
        item.version = expected + 1
        try:
            self._send(
                "put_item",
                TableName=self.table,
                Item=item.to_dynamo(),
                ConditionExpression="version = :v",
                ExpressionAttributeValues={":v": {"N": str(expected)}},
            )
        except (ClientError, ConflictError):
            item.version = expected
            raise

    def delete(self, pk: str, sk: str, expected_version: int | None = None) -> None:
        kwargs: dict[str, Any] = {}
        if expected_version is not None:
            kwargs = {
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": {"N": str(expected_version)}},
            }
        self._send("delete_item", TableName=self.table, Key=serialize({"pk": pk, "sk": sk}), **kwargs)

    # -- transactions -----------------------------------------------------------------

    def replace_op(self, item: Item) -> dict[str, Any]:
        """A TransactWriteItems entry doing what ``replace`` does."""
        expected = item.version
        item.version = expected + 1
        return {
            "Put": {
                "TableName": self.table,
                "Item": item.to_dynamo(),
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": {"N": str(expected)}},
            }
        }

    def put_new_op(self, item: Item) -> dict[str, Any]:
        item.version = 1
        return {
            "Put": {
                "TableName": self.table,
                "Item": item.to_dynamo(),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def add_op(
        self, pk: str, sk: str, deltas: dict[str, int], limits: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """Atomically add ``deltas`` to counters; with ``limits``, only while each stays <= its
        limit (the guard that keeps dispatch within a compute environment's maxvCpus)."""
        names = {f"#c{i}": k for i, k in enumerate(deltas)}
        values: dict[str, Any] = {}
        sets = []
        conds = []
        for i, (k, d) in enumerate(deltas.items()):
            values[f":d{i}"] = {"N": str(d)}
            sets.append(f"#c{i} :d{i}")
            if limits and k in limits:
                values[f":m{i}"] = {"N": str(limits[k] - d)}
                conds.append(f"(attribute_not_exists(#c{i}) OR #c{i} <= :m{i})")
        op: dict[str, Any] = {
            "TableName": self.table,
            "Key": serialize({"pk": pk, "sk": sk}),
            "UpdateExpression": "ADD " + ", ".join(sets),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if conds:
            op["ConditionExpression"] = " AND ".join(conds)
        return {"Update": op}

    def check_op(self, pk: str, sk: str, attribute: str, not_in: tuple[str, ...]) -> dict[str, Any]:
        """A TransactWriteItems entry that writes nothing and passes while the item's
        ``attribute`` is missing (the item too) or not one of ``not_in``."""
        names = {f":n{i}": {"S": v} for i, v in enumerate(not_in)}
        return {
            "ConditionCheck": {
                "TableName": self.table,
                "Key": serialize({"pk": pk, "sk": sk}),
                "ConditionExpression": f"attribute_not_exists(#a) OR NOT (#a IN ({', '.join(names)}))",
                "ExpressionAttributeNames": {"#a": attribute},
                "ExpressionAttributeValues": names,
            }
        }

    def transact(self, ops: list[dict[str, Any]]) -> None:
        """All or nothing; ConflictError when a condition fails (see ``_send``). No entries:
        nothing to do (TransactWriteItems itself refuses an empty list)."""
        if ops:
            self._send("transact_write_items", TransactItems=ops)

    def _send(self, operation: str, **request: Any) -> None:
        """One write. ConflictError when a condition fails. Sent again while DynamoDB
        refuses it only because another transaction was writing one of its items at that
        moment (TransactionConflict): a refused write did not apply, so sending it again is
        safe, and its conditions decide afresh; botocore does not retry these. Refused for
        any other reason (throttled, or still busy after retries), it raises the
        ClientError: that is no answer to a condition, and callers read ConflictError as
        one."""
        for attempt in range(BUSY_TRIES):
            try:
                getattr(self.client, operation)(**request)
                return
            except ClientError as e:
                if _condition_failed(e):
                    raise ConflictError(str(e)) from e
                if not _busy(e) or attempt == BUSY_TRIES - 1:
                    raise
            time.sleep(random.uniform(0, 0.025 * 2**attempt))  # jittered: both may be retrying

    def counters(self, pk: str, sk: str) -> dict[str, int]:
        out = self.client.get_item(
            TableName=self.table, Key=serialize({"pk": pk, "sk": sk}), ConsistentRead=True
        )
        data = deserialize(out.get("Item") or {})
        return {k: int(v) for k, v in data.items() if k not in ("pk", "sk")}

    # -- listings ---------------------------------------------------------------------

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
        """Items of one listing partition in gsi1sk order, a page at a time."""
        values: dict[str, Any] = {":p": {"S": gsi1pk}}
        cond = "gsi1pk = :p"
        if begins_with:
            cond += " AND begins_with(gsi1sk, :b)"
            values[":b"] = {"S": begins_with}
        elif between:
            cond += " AND gsi1sk BETWEEN :lo AND :hi"
            values[":lo"] = {"S": between[0]}
            values[":hi"] = {"S": between[1]}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "gsi1",
            "KeyConditionExpression": cond,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": forward,
        }
        start = decode_token(token)
        if start:
            # A token of another listing (another partition, or outside this key
            # condition) is the caller's mistake, which DynamoDB would refuse as a
            # ValidationException.
            if start["gsi1pk"]["S"] != gsi1pk or not in_listing(start["gsi1sk"]["S"], begins_with, between):
                raise ClientException(_BAD_TOKEN)
            kwargs["ExclusiveStartKey"] = start
        items: list[Item] = []
        while True:
            if limit is not None:
                kwargs["Limit"] = limit - len(items)
            out = self.client.query(**kwargs)
            items += [Item.from_dynamo(r) for r in out.get("Items", [])]
            last = out.get("LastEvaluatedKey")
            if not last or (limit is not None and len(items) >= limit):
                return items, encode_token(last)
            kwargs["ExclusiveStartKey"] = last

    def transact_or_put(self, op: dict[str, Any]) -> None:
        """One transaction entry (a conditional Put) written on its own: half the cost of
        a one-item transaction."""
        self._send("put_item", **op["Put"])

    def query_partition(self, pk: str, sk_prefix: str, forward: bool = True, raw: bool = False) -> list[Any]:
        """Every item under one pk whose sk starts with ``sk_prefix`` (all of them when it
        is empty; ``raw``: as plain attribute maps, for counter items that have no ``doc``)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)" if sk_prefix else "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": pk}, **({":s": {"S": sk_prefix}} if sk_prefix else {})},
            "ScanIndexForward": forward,
            "ConsistentRead": True,
        }
        items: list[Any] = []
        while True:
            out = self.client.query(**kwargs)
            items += [deserialize(r) if raw else Item.from_dynamo(r) for r in out.get("Items", [])]
            if not out.get("LastEvaluatedKey"):
                return items
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]


def _reasons(e: ClientError) -> list[str]:
    return [str(r.get("Code")) for r in e.response.get("CancellationReasons") or []]


def _busy(e: ClientError) -> bool:
    """Refused only because another transaction held one of the items just then."""
    code = e.response["Error"]["Code"]
    if code == "TransactionConflictException":  # a single write meeting a transaction
        return True
    reasons = _reasons(e)
    return (code == "TransactionCanceledException" and "TransactionConflict" in reasons
            and "ConditionalCheckFailed" not in reasons)


def _condition_failed(e: ClientError) -> bool:
    code = e.response["Error"]["Code"]
    if code == "ConditionalCheckFailedException":
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = _reasons(e)
    # Without reasons (older emulators) a cancelled transaction is taken as a conflict.
    return "ConditionalCheckFailed" in reasons or not reasons
