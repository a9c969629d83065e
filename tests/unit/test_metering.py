"""The cost meter counts what the control plane asks of AWS (behaviour, not timing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest
from batchplane import aws, config, metering
from moto import mock_aws

if TYPE_CHECKING:
    from collections.abc import Iterator

TABLE = "meter-test"
SHAPE = metering.TableShape(key=("pk", "sk"), indexes=(("gsi1pk", "gsi1sk"),))


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        config.settings.cache_clear()
        boto3.client("dynamodb").create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                                  for n in ("pk", "sk", "gsi1pk", "gsi1sk")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{
                "IndexName": "gsi1", "Projection": {"ProjectionType": "ALL"},
                "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"},
                              {"AttributeName": "gsi1sk", "KeyType": "RANGE"}],
            }],
        )
        metering.reset()
        metering.enable({TABLE: SHAPE})
        aws.reset()
        try:
            yield aws.client("dynamodb")
        finally:
            metering.disable()
            metering.reset()
            aws.reset()
            config.settings.cache_clear()


def _job(status: str, pad: int = 0) -> dict[str, Any]:
    return {"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}, "gsi1pk": {"S": f"JOBS#q#{status}"},
            "gsi1sk": {"S": "1"}, "doc": {"S": "x" * pad}}


def test_counts_calls_by_service_operation_and_scope(dynamodb: Any) -> None:
    with metering.scope("ApiFunction"):
        dynamodb.put_item(TableName=TABLE, Item=_job("SUBMITTED"))
        dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}},
                          ConsistentRead=True)
    with metering.scope("SchedulerFunction"):
        dynamodb.query(TableName=TABLE, IndexName="gsi1", KeyConditionExpression="gsi1pk = :p",
                       ExpressionAttributeValues={":p": {"S": "JOBS#q#SUBMITTED"}})
        dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}})

    usage = metering.snapshot()
    assert usage.counts[("ApiFunction", "dynamodb", "PutItem")].calls == 1
    assert usage.counts[("ApiFunction", "dynamodb", "GetItem")].calls == 1
    assert usage.counts[("SchedulerFunction", "dynamodb", "Query")].calls == 1
    assert usage.counts[("SchedulerFunction", "dynamodb", "GetItem")].calls == 1
    assert usage.total().calls == 4
    assert usage.total().requests == 4  # no retries
    assert usage.by_operation()[("dynamodb", "GetItem")].calls == 2
    assert usage.total(scopes={"SchedulerFunction"}).calls == 2


def test_asks_dynamodb_for_consumed_capacity_and_sums_it(dynamodb: Any) -> None:
    out = dynamodb.put_item(TableName=TABLE, Item=_job("SUBMITTED"))
    assert "ConsumedCapacity" in out  # the meter added ReturnConsumedCapacity=TOTAL
    dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}})
    assert metering.snapshot().total().reported_units > 0


def test_estimates_on_demand_request_units(dynamodb: Any) -> None:
    # New 1.5 KB item in a table with one index: 2 WRU for the table, 2 for the index.
    dynamodb.put_item(TableName=TABLE, Item=_job("SUBMITTED", pad=1500))
    first = metering.snapshot()
    assert first.total().write_units == 4
    # The same item moved to another index partition: table 2, index delete 2 + put 2.
    dynamodb.put_item(TableName=TABLE, Item=_job("RUNNABLE", pad=1500))
    moved = metering.snapshot() - first
    assert moved.total().write_units == 6
    # Transactional writes cost twice on the table (the index write stays single).
    before = metering.snapshot()
    dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": TABLE,
                                                          "Item": _job("RUNNABLE", pad=100)}}])
    assert (metering.snapshot() - before).total().write_units == 2 * 2 + 1  # table twice 2 KB; index updated in place
    # A strongly consistent read of a small item is 1 RRU, an eventual one 0.5, and a
    # missing item still costs the minimum.
    before = metering.snapshot()
    dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}},
                      ConsistentRead=True)
    dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "JOB#2"}, "sk": {"S": "JOB"}})
    assert (metering.snapshot() - before).total().read_units == 1.5


def test_failed_conditional_writes_are_counted(dynamodb: Any) -> None:
    dynamodb.put_item(TableName=TABLE, Item=_job("SUBMITTED"))
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.put_item(TableName=TABLE, Item=_job("SUBMITTED"),
                          ConditionExpression="attribute_not_exists(pk)")
    put = metering.snapshot().counts[("-", "dynamodb", "PutItem")]
    assert put.calls == 2
    assert put.errors == 1
    assert put.write_units >= 2


@pytest.mark.usefixtures("dynamodb")
def test_off_by_default_and_then_untouched() -> None:
    metering.disable()
    aws.reset()
    plain = aws.client("dynamodb")
    out = plain.put_item(TableName=TABLE, Item=_job("SUBMITTED"))
    assert "ConsumedCapacity" not in out
    before = metering.snapshot()
    plain.get_item(TableName=TABLE, Key={"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}})
    assert (metering.snapshot() - before).total().calls == 0


def test_item_size_follows_dynamodb_rules() -> None:
    assert metering.item_size({"ab": {"S": "xyz"}}) == 5
    assert metering.item_size({"n": {"N": "12345"}}) == 1 + 4  # 3 bytes of digits + 1
    assert metering.item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + 1 + 1 + 1
