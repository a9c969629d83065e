"""The cost meter: counts every AWS request the control plane makes, by service and
operation, and what each DynamoDB request costs in on-demand request units.

Off by default, and then free: ``instrument`` returns the client untouched, so Lambda
pays nothing for it. The benchmarks (``python -m bench``) switch it on with ``enable()``
before any client exists (``aws.client`` instruments every client it creates), attribute
calls to whoever made them with ``scope("SchedulerFunction")``, and read the totals with
``snapshot()``.

DynamoDB calls get ``ReturnConsumedCapacity=TOTAL`` while metering, and the meter sums
what the service reports. moto reports constants (1 unit per write, 0.5 per read,
nothing for transactions), so the meter also *estimates* the request units DynamoDB
on-demand would bill, from the items it sees and the rules AWS documents: reads are
billed per 4 KB (half for eventually consistent reads, a minimum of one unit even for a
missing item), writes per 1 KB of the larger of the old and new item, transactional
writes twice, and every write that changes an item's global secondary index key costs
index writes too. The estimate is what the benchmarks price.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "Counts",
    "TableShape",
    "Usage",
    "enable",
    "disable",
    "enabled",
    "instrument",
    "item_size",
    "reset",
    "scope",
    "snapshot",
]

_PARAMS = "batchplane_meter_params"
_SCOPE: ContextVar[str] = ContextVar("batchplane_meter_scope", default="-")
_READ_OPS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}


@dataclass
class Counts:
    """What one (scope, service, operation) cost."""

    calls: int = 0  # API calls as the caller made them
    requests: int = 0  # HTTP requests sent, retries included
    errors: int = 0  # calls answered with an error (failed conditions are billed too)
    entries: int = 0  # EventBridge PutEvents entries
    reported_units: float = 0.0  # ConsumedCapacity the service returned (moto: constants)
    read_units: float = 0.0  # estimated DynamoDB on-demand read request units
    write_units: float = 0.0  # estimated DynamoDB on-demand write request units

    def add(self, other: Counts, sign: int = 1) -> None:
        self.calls += sign * other.calls
        self.requests += sign * other.requests
        self.errors += sign * other.errors
        self.entries += sign * other.entries
        self.reported_units += sign * other.reported_units
        self.read_units += sign * other.read_units
        self.write_units += sign * other.write_units


Key = tuple[str, str, str]  # scope, service, operation


@dataclass
class Usage:
    """A copy of the meter's totals; ``after - before`` is what happened in between."""

    counts: dict[Key, Counts] = field(default_factory=dict)

    def __sub__(self, other: Usage) -> Usage:
        out: dict[Key, Counts] = {}
        for key, value in self.counts.items():
            delta = Counts()
            delta.add(value)
            if key in other.counts:
                delta.add(other.counts[key], -1)
            if delta != Counts():
                out[key] = delta
        return Usage(out)

    def total(self, *, scopes: set[str] | None = None, exclude: set[str] | None = None,
              service: str | None = None) -> Counts:
        """The sum over the scopes asked for (all by default), optionally one service."""
        out = Counts()
        for (sc, svc, _), value in self.counts.items():
            if scopes is not None and sc not in scopes:
                continue
            if exclude and sc in exclude:
                continue
            if service is not None and svc != service:
                continue
            out.add(value)
        return out

    def by_operation(self, *, exclude: set[str] | None = None) -> dict[tuple[str, str], Counts]:
        """(service, operation) -> counts, summed over scopes."""
        out: dict[tuple[str, str], Counts] = {}
        for (sc, svc, op), value in self.counts.items():
            if exclude and sc in exclude:
                continue
            out.setdefault((svc, op), Counts()).add(value)
        return out


@dataclass(frozen=True)
class TableShape:
    """What the estimate needs to know of a table: its key attributes and, per global
    secondary index, the attributes that key it."""

    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()


class _Meter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[Key, Counts] = {}
        self.tables: dict[str, TableShape] = {}
        # (table, key) -> (item size, index keys) as last seen: a write's cost depends on
        # the item it replaces, which the write itself does not show.
        self.items: dict[tuple[str, str], tuple[int, tuple[str | None, ...]]] = {}

    def counter(self, service: str, operation: str) -> Counts:
        key = (_SCOPE.get(), service, operation)
        found = self.counts.get(key)
        if found is None:
            found = self.counts[key] = Counts()
        return found


_meter = _Meter()
_enabled = False


def enabled() -> bool:
    return _enabled


def enable(tables: dict[str, TableShape] | None = None) -> None:
    """Meter the clients instrumented from now on. ``tables`` describes the DynamoDB
    tables (key and index attributes) so that the estimate can price index writes."""
    global _enabled  # noqa: PLW0603 - the process's one meter switch, read on every call
    with _meter.lock:
        _meter.tables.update(tables or {})
    _enabled = True


def disable() -> None:
    """Stop counting (instrumented clients keep their hooks but record nothing)."""
    global _enabled  # noqa: PLW0603 - the process's one meter switch, read on every call
    _enabled = False


def reset() -> None:
    """Forget every count and every item seen."""
    with _meter.lock:
        _meter.counts.clear()
        _meter.items.clear()


def snapshot() -> Usage:
    with _meter.lock:
        copied: dict[Key, Counts] = {}
        for key, value in _meter.counts.items():
            c = Counts()
            c.add(value)
            copied[key] = c
        return Usage(copied)


@contextmanager
def scope(name: str) -> Iterator[None]:
    """Attribute the calls made in this thread meanwhile to ``name``."""
    token = _SCOPE.set(name)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def instrument(client: Any) -> Any:
    """Hook the meter into ``client`` when metering is on; otherwise do nothing."""
    if not _enabled:
        return client
    service = client.meta.service_model.service_name

    def count_request(event_name: str, **_: Any) -> None:
        # before-send.<service-id>.<Operation>: one per HTTP request, retries included
        if _enabled:
            with _meter.lock:
                _meter.counter(service, event_name.rsplit(".", 1)[-1]).requests += 1

    events = client.meta.events
    events.register("provide-client-params", _remember_params)
    events.register("before-send", count_request)
    events.register("after-call", _record_call)
    events.register("after-call-error", _record_failure)
    return client


# -- hooks ----------------------------------------------------------------------------


def _service(model: Any) -> str:
    return str(model.service_model.service_name)


def _remember_params(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    if not _enabled:
        return
    if (
        _service(model) == "dynamodb"
        and "ReturnConsumedCapacity" in model.input_shape.members
        and "ReturnConsumedCapacity" not in params
    ):
        params["ReturnConsumedCapacity"] = "TOTAL"
    context[_PARAMS] = params


def _record_failure(model: Any, **_: Any) -> None:
    if not _enabled:
        return
    with _meter.lock:
        c = _meter.counter(_service(model), model.name)
        c.calls += 1
        c.errors += 1


def _record_call(http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any],
                 **_: Any) -> None:
    if not _enabled:
        return
    service = _service(model)
    op = model.name
    params = context.get(_PARAMS) or {}
    failed = int(getattr(http_response, "status_code", 200)) >= HTTPStatus.MULTIPLE_CHOICES  # a 3xx, 4xx or 5xx
    with _meter.lock:
        c = _meter.counter(service, op)
        c.calls += 1
        c.errors += int(failed)
        if service == "events" and op == "PutEvents":
            c.entries += len(params.get("Entries") or [])
        if service == "dynamodb":
            c.reported_units += _reported(parsed.get("ConsumedCapacity"))
            reads, writes = _estimate(op, params, parsed, failed)
            c.read_units += reads
            c.write_units += writes


def _reported(consumed: Any) -> float:
    if isinstance(consumed, dict):
        return float(consumed.get("CapacityUnits") or 0)
    if isinstance(consumed, list):
        return sum(_reported(c) for c in consumed)
    return 0.0


# -- request unit estimate (DynamoDB on-demand) -----------------------------------------


def item_size(item: dict[str, Any] | None) -> int:
    """An item's size as DynamoDB counts it (attribute names plus values), from the
    low-level wire format ``{"name": {"S": "..."}}``."""
    if not item:
        return 0
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = len(v.lstrip("-").replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in v)
    if kind == "NS":
        return sum(_value_size({"N": n}) for n in v)
    if kind == "BS":
        return sum(len(b) for b in v)
    if kind == "L":
        return 3 + sum(1 + _value_size(e) for e in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(e) for k, e in v.items())
    return 0


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


def _write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


class _Writes:
    """Write units of the items of one call, from what the meter knows of each table."""

    def __init__(self, commit: bool) -> None:
        self.commit = commit  # False when the write failed: the items did not change

    @staticmethod
    def ident(table: str, item: dict[str, Any]) -> tuple[str, str]:
        shape = _meter.tables.get(table)
        key = {k: item[k] for k in shape.key if k in item} if shape else item
        return table, repr(sorted((k, repr(v)) for k, v in key.items()))

    @staticmethod
    def index_keys(table: str, item: dict[str, Any] | None) -> tuple[str | None, ...]:
        """Per index, the item's key in it (None when the item is not in that index)."""
        shape = _meter.tables.get(table)
        if shape is None:
            return ()
        return tuple(
            repr([item[a] for a in attrs]) if item and all(a in item for a in attrs) else None
            for attrs in shape.indexes
        )

    def seen(self, table: str, item: dict[str, Any]) -> None:
        _meter.items[self.ident(table, item)] = (item_size(item), self.index_keys(table, item))

    def put(self, table: str, item: dict[str, Any], factor: int) -> int:
        """Table plus index write units of replacing (or creating) ``item``."""
        ident = self.ident(table, item)
        old_size, old_index = _meter.items.get(ident, (0, self.index_keys(table, None)))
        new_size = item_size(item)
        new_index = self.index_keys(table, item)
        units = factor * _write_units(max(old_size, new_size))
        for before, after in zip(old_index, new_index, strict=False):
            if before is not None and after is not None and before != after:
                units += _write_units(old_size) + _write_units(new_size)  # moved in the index
            elif after is not None:
                units += _write_units(new_size)
            elif before is not None:
                units += _write_units(old_size)
        if self.commit:
            _meter.items[ident] = (new_size, new_index)
        return units

    def update(self, table: str, key: dict[str, Any], values: dict[str, Any] | None,
               factor: int) -> int:
        ident = self.ident(table, key)
        old_size, index = _meter.items.get(ident, (0, ()))
        size = max(old_size, item_size(key) + sum(_value_size(v) for v in (values or {}).values()))
        if self.commit:
            _meter.items[ident] = (size, index)
        # batchplane updates only counters: no index key changes, so no index writes.
        return factor * _write_units(size)

    def delete(self, table: str, key: dict[str, Any], factor: int) -> int:
        ident = self.ident(table, key)
        old_size, index = _meter.items.get(ident, (0, ()))
        if self.commit:
            _meter.items.pop(ident, None)
        return factor * _write_units(old_size) + sum(_write_units(old_size) for v in index if v)


def _estimate(op: str, params: dict[str, Any], parsed: dict[str, Any],
              failed: bool) -> tuple[float, float]:
    """(read units, write units) DynamoDB on-demand would bill for this call. Failed
    conditional writes are billed like successful ones."""
    writes = _Writes(commit=not failed)
    table = params.get("TableName", "")
    if op in _READ_OPS:
        return _estimate_read(op, params, parsed, writes), 0.0
    units = 0
    if op == "PutItem":
        units = writes.put(table, params["Item"], 1)
    elif op == "UpdateItem":
        units = writes.update(table, params["Key"], params.get("ExpressionAttributeValues"), 1)
    elif op == "DeleteItem":
        units = writes.delete(table, params["Key"], 1)
    elif op == "TransactWriteItems":
        for entry in params.get("TransactItems", []):
            ((kind, body),) = entry.items()
            t = body.get("TableName", "")
            if kind == "Put":
                units += writes.put(t, body["Item"], 2)
            elif kind == "Update":
                units += writes.update(t, body["Key"], body.get("ExpressionAttributeValues"), 2)
            elif kind == "Delete":
                units += writes.delete(t, body["Key"], 2)
            else:  # ConditionCheck
                units += 2
    elif op == "BatchWriteItem":
        for t, requests in (params.get("RequestItems") or {}).items():
            for r in requests:
                if "PutRequest" in r:
                    units += writes.put(t, r["PutRequest"]["Item"], 1)
                else:
                    units += writes.delete(t, r["DeleteRequest"]["Key"], 1)
    # Anything else (DescribeTable, ...) is a control operation, not request-billed.
    return 0.0, float(units)


def _estimate_read(op: str, params: dict[str, Any], parsed: dict[str, Any],
                   writes: _Writes) -> float:
    table = params.get("TableName", "")
    consistent = bool(params.get("ConsistentRead"))
    if op == "GetItem":
        item = parsed.get("Item")
        if item:
            writes.seen(table, item)
        return _read_units(item_size(item), consistent)
    if op in ("Query", "Scan"):
        items = parsed.get("Items") or []
        for item in items:
            writes.seen(table, item)
        # Billed on the total size read, rounded up to 4 KB; index reads are eventual.
        strong = consistent and not params.get("IndexName")
        return _read_units(sum(item_size(i) for i in items), strong)
    if op == "BatchGetItem":
        units = 0.0
        responses = parsed.get("Responses") or {}
        for t, request in (params.get("RequestItems") or {}).items():
            strong = bool(request.get("ConsistentRead"))
            found = responses.get(t, [])
            for item in found:
                writes.seen(t, item)
                units += _read_units(item_size(item), strong)
            unprocessed = len((parsed.get("UnprocessedKeys") or {}).get(t, {}).get("Keys", []))
            missing = len(request.get("Keys", [])) - len(found) - unprocessed
            units += max(0, missing) * _read_units(0, strong)  # a missing item costs a read too
        return units
    # TransactGetItems: each item costs twice a strongly consistent read
    items = [r.get("Item") for r in parsed.get("Responses") or []]
    return sum(2 * _read_units(item_size(i), True) for i in items)
