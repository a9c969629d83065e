"""Local mode keeps scheduling after a cancelled DynamoDB transaction.

batchplane cancels transactions by design whenever two schedulers race for one job. moto's
own TransactWriteItems rolled back by swapping in a deep copy of the table, stream shard
included, so the router's stream poller kept reading a dead shard and new jobs stayed
SUBMITTED until the 1-minute tick. local/moto_fixes.py installs a per-item rollback; this
test pins it from the outside: a transaction is cancelled through the stack's own front
port, then a job must still run at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchplane.local.stack import TABLE_NAME, LocalStack

from tests.e2e.support import Env, make_client, uniq, wait_done

if TYPE_CHECKING:
    import pytest


def test_jobs_still_run_after_a_cancelled_transaction(endpoint: str, batch: Any, env: Env) -> None:
    ddb = make_client("dynamodb", endpoint)  # routed to the emulator by its credential scope
    item = {"pk": {"S": f"E2E#{uniq('probe')}"}, "sk": {"S": "#"}}
    ddb.put_item(TableName=TABLE_NAME, Item=item)
    try:
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": TABLE_NAME,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            ]
        )
        raise AssertionError("the transaction should have been cancelled")
    except ddb.exceptions.TransactionCanceledException:
        pass
    finally:
        ddb.delete_item(TableName=TABLE_NAME, Key=item)
    job_id = batch.submit_job(
        jobName=uniq("after-cancel"), jobQueue=env.queue, jobDefinition=env.jobdef
    )["jobId"]
    assert wait_done(batch, job_id, timeout=8)["status"] == "SUCCEEDED"


def test_jobs_still_run_after_the_stream_read_fails(
    stack: LocalStack, batch: Any, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed GetRecords (moto answering 500, a dropped connection) neither stops the
    reader nor loses or repeats records: it resumes after the last record it read."""
    assert stack.router is not None
    streams = stack.router.clients["dynamodbstreams"]
    real_get_records = streams.get_records
    failures: list[int] = []

    def failing_twice(**kwargs: Any) -> Any:
        if len(failures) < 2:
            failures.append(1)
            raise ConnectionError("the emulator went away for a moment")
        return real_get_records(**kwargs)

    monkeypatch.setattr(streams, "get_records", failing_twice)
    job_id = batch.submit_job(jobName=uniq("after-failed-read"), jobQueue=env.queue, jobDefinition=env.jobdef)["jobId"]
    job = wait_done(batch, job_id, timeout=15)
    assert job["status"] == "SUCCEEDED" and len(job["attempts"]) == 1
    assert len(failures) == 2
