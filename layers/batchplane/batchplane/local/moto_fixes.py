"""Two faults of moto's DynamoDB TransactWriteItems that local mode cannot live with.

moto (5.x) backs up every table a transaction touches with ``copy.deepcopy`` before
applying it, and on a failed condition swaps the copies back in. That costs time in
proportion to the whole table on every transaction, and the swapped-in copy carries a
copy of the stream shard, so every open stream reader keeps polling a shard that never
receives another record: after the first lost race, the local scheduler would never
hear of new jobs again. batchplane loses conditional transactions by design (two
schedulers racing for one job), so local mode installs this per-item rollback instead.

The logic otherwise follows moto's own implementation (Apache-2.0), operation by
operation, with the same errors.

Also ECS RunTask: on a cluster with no container instance moto answers with a bare
exception (a 500) where AWS answers InvalidParameterException (the scheduler must tell
"no room yet" from a real failure), and moto ignores its clientToken (idempotency the
scheduler relies on).

And EventBridge's pattern matching, done without moto's JSON copies (see patterns.py).

And EventBridge PutEvents: moto builds each event's message again for every rule on the
bus (a deep copy and a JSON parse of its detail each), matched or not; here it is built
once, and each rule it matches gets a copy of its own, as before.

And the list of a response class's methods, which moto makes again with inspect.getmembers
on every request (a quarter of what moto spends on a CreateLogStream): made once a class.
"""

from __future__ import annotations

import contextvars
import copy
import functools
import json
from typing import Any

import moto.core.responses
import moto.core.utils
from moto.core.utils import unix_time
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import EC2ContainerServiceBackend
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.events.exceptions import ValidationException
from moto.events.models import EventPattern, EventsBackend
from moto.events.utils import _BASE_EVENT_MESSAGE
from moto.moto_api._internal import mock_random

from . import patterns

MAX_PUT_EVENTS = 10  # EventBridge's limit on the entries of one PutEvents
MAX_TRANSACT_ITEMS = 100  # DynamoDB's limit on the items of one TransactWriteItems


def _key(table: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return op["Key"]
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _raw_key(table: Any, key: dict[str, Any]) -> tuple[DynamoType, DynamoType | None]:
    hash_value = DynamoType(key[table.hash_key_attr])
    range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    return hash_value, range_value


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:  # noqa: PLR0915 - follows moto's transact_write_items, which it replaces, step by step
    if len(transact_items) > MAX_TRANSACT_ITEMS:
        raise TooManyTransactionsException()
    saved: list[tuple[Any, DynamoType, DynamoType | None, Any]] = []
    stream_lengths: dict[str, tuple[Any, int]] = {}
    target_items: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []

    def rollback() -> None:
        for table, hash_value, range_value, old in reversed(saved):
            if range_value is not None:
                if old is None:
                    table.items[hash_value].pop(range_value, None)
                else:
                    table.items[hash_value][range_value] = old
            elif old is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = old
        for table, length in stream_lengths.values():
            del table.stream_shard.items[length:]

    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            table = self.get_table(table_name)
            key = _key(table, op_type, op)
            marker = (str(table_name), str(dict(sorted(key.items()))))
            if marker in target_items:
                raise MultipleTransactionsException()
            target_items.add(marker)
            if table.stream_shard is not None and table_name not in stream_lengths:
                stream_lengths[table_name] = (table, len(table.stream_shard.items))
            hash_value, range_value = _raw_key(table, key)
            current = self.get_item(table_name, key)
            saved.append((table, hash_value, range_value, copy.deepcopy(current)))
            condition = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if condition is not None and not get_filter_expression(condition, names, values).expr(current):
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    original_item = current.to_json()["Attributes"]
                raise ConditionalCheckFailed(item=original_item)
            kwargs = {"condition_expression": condition, "expression_attribute_names": names,
                      "expression_attribute_values": values}
            if op_type == "Put":
                self.put_item(table_name, op["Item"], **kwargs)
            elif op_type == "Delete":
                self.delete_item(table_name, key, **kwargs)
            elif op_type == "Update":
                self.update_item(table_name, key, update_expression=op["UpdateExpression"], **kwargs)
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            rollback()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # noqa: BLE001 - moto reports every other failure per item too
            errors.append((type(e).__name__, str(e), original_item))
    if any(code is not None for code, _, _ in errors):
        rollback()
        raise TransactionCanceledException(errors)


_moto_run_task = EC2ContainerServiceBackend.run_task


_moto_run_task_response = EC2ContainerServiceResponse.run_task
_moto_method_names = moto.core.utils.method_names_from_class
_client_token: contextvars.ContextVar[str | None] = contextvars.ContextVar("ecs_client_token", default=None)


def run_task(self: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Any:
    """ECS RunTask on a cluster with no container instance: AWS answers
    InvalidParameterException "No Container Instances were found in your cluster.";
    moto raises a bare Exception (a 500), which no client can tell from an outage.

    And RunTask's clientToken, which moto ignores: AWS starts the tasks of a token once,
    and a repeated call answers with them. The scheduler counts on that to ask again
    after a launch whose answer it did not get."""
    token = _client_token.get()
    started = self.__dict__.setdefault("batchplane_client_tokens", {})
    if token and token in started:
        return started[token]
    try:
        tasks = _moto_run_task(self, *args, **kwargs)
    except Exception as e:
        if type(e) is Exception and str(e).startswith("No instances found in cluster"):
            raise InvalidParameterException("No Container Instances were found in your cluster.") from e
        raise
    if token and tasks:
        started[token] = tasks
    return tasks


def put_events(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """moto's ``EventsBackend.put_events`` (the same answers and deliveries), building each
    event's message once rather than once a rule."""
    if len(events) > MAX_PUT_EVENTS:
        raise ValidationException(
            "1 validation error detected: Value '[PutEventsRequestEntry]' at 'entries' failed to "
            f"satisfy constraint: Member must have length less than or equal to {MAX_PUT_EVENTS}")
    entries: list[dict[str, Any]] = []
    for event in events:
        missing = next((name for name in ("Source", "DetailType", "Detail") if not event.get(name)), None)
        if missing is not None:
            entries.append({"ErrorCode": "InvalidArgument", "ErrorMessage":
                            f"Parameter {missing} is not valid. Reason: {missing} is a required argument."})
            continue
        try:
            detail = json.loads(event["Detail"])
        except ValueError:
            entries.append({"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."})
            continue
        event_id = str(mock_random.uuid4())
        entries.append({"EventId": event_id})
        event_bus = self.describe_event_bus(self._normalize_event_bus_arn(event.get("EventBusName")))
        message = {**copy.deepcopy(_BASE_EVENT_MESSAGE), "id": event_id, "detail-type": event["DetailType"],
                   "source": event["Source"], "account": self.account_id, "time": event.get("Time", unix_time()),
                   "region": self.region_name, "resources": event.get("Resources", []), "detail": detail,
                   "ingestion-time": unix_time()}
        for rule in event_bus.rules.values():
            if rule.event_pattern.matches_event(message):  # type: ignore[arg-type]  # moto types its messages as a TypedDict
                rule.send_to_targets(copy.deepcopy(message))  # type: ignore[arg-type]
    return entries


@functools.cache
def _method_names(clazz: type) -> list[str]:
    return list(_moto_method_names(clazz))


def run_task_response(self: EC2ContainerServiceResponse) -> Any:
    reset = _client_token.set(self._get_param("clientToken"))
    try:
        return _moto_run_task_response(self)
    finally:
        _client_token.reset(reset)


def install() -> None:
    """Replace what the module docstring names in this process (idempotent)."""
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    EC2ContainerServiceBackend.run_task = run_task  # type: ignore[method-assign]
    EC2ContainerServiceResponse.run_task = run_task_response  # type: ignore[method-assign]
    EventPattern.matches_event = patterns.matches_event  # type: ignore[method-assign]
    moto.core.responses.method_names_from_class = _method_names
    EventsBackend.put_events = put_events  # type: ignore[method-assign]
