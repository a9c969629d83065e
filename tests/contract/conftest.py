"""One store contract, both adapters: every test takes ``kit`` and runs once on
DynamoDB (moto, the table exactly as template.yaml declares it) and once on the embedded
SQLite store. A kit is the store plus a reader of the change stream that hands back, in
the shape Lambda receives them, the records written since the test began."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import boto3
import pytest
from batchplane.local import moto_fixes
from batchplane.local.router import _as_lambda_json
from batchplane.local.stack import LOG_GROUP, create_resources
from batchplane.local.template import Template
from batchplane.store import DynamoStore, Store
from batchplane.store.sqlite import SqliteStore
from moto import mock_aws

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
TABLE = "batchplane-contract"
REGION = "us-east-1"
STORES = ["dynamodb", "sqlite"]


class StreamReader(Protocol):
    def __call__(self) -> list[dict[str, Any]]: ...


@dataclass
class Kit:
    name: str
    store: Store
    records: StreamReader  # the stream records since the kit was made, oldest first


class DynamoStreamReader:
    """The table's one shard read from its start (TRIM_HORIZON) with moto's
    dynamodbstreams client, records converted to Lambda's JSON as local mode's router
    does; those that existed when the reader was made are left out."""

    def __init__(self, streams: Any, dynamodb: Any, table: str) -> None:
        self.streams = streams
        self.arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.skip = 0
        self.skip = len(self())

    def __call__(self) -> list[dict[str, Any]]:
        shard = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = self.streams.get_shard_iterator(
            StreamArn=self.arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records: list[dict[str, Any]] = []
        while iterator:
            out = self.streams.get_records(ShardIterator=iterator, Limit=1000)
            if not out["Records"]:
                break
            records += out["Records"]
            iterator = out.get("NextShardIterator")
        return json.loads(json.dumps(_as_dynamodb_records(records)[self.skip:], default=_as_lambda_json))


def _as_dynamodb_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """moto's stream (5.x) as DynamoDB's would be. The contract is DynamoDB's (the
    embedded store keeps it), and moto records two things DynamoDB does not:

    - an UpdateItem that creates its item twice: an INSERT of the bare key, then an
      INSERT of the item (DynamoDB: one INSERT);
    - a write that changes nothing, as a MODIFY whose images are equal (DynamoDB writes
      no record when a PutItem or UpdateItem changes no data)."""
    def bare_then_full(r: dict[str, Any], after: dict[str, Any]) -> bool:
        change = r["dynamodb"]
        return (r["eventName"] == after["eventName"] == "INSERT" and change["Keys"] == after["dynamodb"]["Keys"]
                and change.get("NewImage") == change["Keys"])

    def unchanged(r: dict[str, Any]) -> bool:
        return r["eventName"] == "MODIFY" and r["dynamodb"]["OldImage"] == r["dynamodb"]["NewImage"]

    return [r for n, r in enumerate(records)
            if not unchanged(r) and (n + 1 == len(records) or not bare_then_full(r, records[n + 1]))]


class SqliteStreamReader:
    """``records`` after the last sequence the store had when the reader was made."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.after = store.last_sequence()

    def __call__(self) -> list[dict[str, Any]]:
        return [record for _, record in self.store.records(after=self.after, limit=100_000)]


@dataclass
class Moto:
    template: Template
    dynamodb: Any
    logs: Any
    streams: Any
    tables: Iterator[str]


@pytest.fixture(scope="package")
def moto() -> Iterator[Moto]:
    """One moto for the package (starting moto and making clients is most of a test's
    time); each test has a table of its own."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}.items():
            env.setenv(key, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        moto_fixes.install()  # the TransactWriteItems local mode runs on moto (see its docstring)
        with mock_aws():
            yield Moto(Template.load(ROOT / "template.yaml"), boto3.client("dynamodb", region_name=REGION),
                       boto3.client("logs", region_name=REGION), boto3.client("dynamodbstreams", region_name=REGION),
                       (f"{TABLE}-{n}" for n in itertools.count()))


@pytest.fixture
def dynamodb_kit(moto: Moto) -> Iterator[Kit]:
    """A table exactly as template.yaml declares it (stream and TTL included)."""
    table = next(moto.tables)
    create_resources(moto.template, moto.dynamodb, moto.logs, table)
    yield Kit("dynamodb", DynamoStore(moto.dynamodb, table), DynamoStreamReader(moto.streams, moto.dynamodb, table))
    moto.dynamodb.delete_table(TableName=table)
    moto.logs.delete_log_group(logGroupName=LOG_GROUP)


@pytest.fixture
def sqlite_kit(tmp_path: Path) -> Iterator[Kit]:
    store = SqliteStore(tmp_path / "store.db")
    yield Kit("sqlite", store, SqliteStreamReader(store))
    store.close()


@pytest.fixture(params=STORES)
def kit(request: pytest.FixtureRequest) -> Kit:
    return request.getfixturevalue(f"{request.param}_kit")
