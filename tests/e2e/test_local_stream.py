"""Local mode keeps scheduling after a cancelled DynamoDB transaction.

batchplane cancels transactions by design whenever two schedulers race for one job. moto's
own TransactWriteItems rolled back by swapping in a deep copy of the table, stream shard
included, so the router's stream poller kept reading a dead shard and new jobs stayed
SUBMITTED until the 1-minute tick. local/moto_fixes.py installs a per-item rollback; this
test pins it from the outside: a transaction is cancelled through the stack's own front
port, then a job must still run at once.
"""

from __future__ import annotations

from typing import Any

from batchplane.local.stack import TABLE_NAME

from .support import Env, make_client, uniq, wait_done


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
