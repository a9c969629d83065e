"""Every sample event in events/ through its handler, against moto."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from batchplane import clock
from batchplane.domain.jobs import parent_cancel_decision
from batchplane.store.dynamodb import BUSY_TRIES, Item
from batchplane.wiring import services
from botocore.exceptions import ClientError

from .conftest import api_call, load_event

if TYPE_CHECKING:
    from batchplane.local.router import Function

JOB_ID = "4c3a0d0e-1111-4e8f-9a55-7d3cbe0f0001"  # the job the sample events name


def _job(job_id: str = JOB_ID) -> dict[str, Any]:
    item = services().jobs.get(job_id)
    assert item is not None
    return item.doc


def _seed_sample_job() -> None:
    """Store the job exactly as the sample stream record shows it."""
    raw = load_event("scheduler/stream-insert.json")["Records"][0]["dynamodb"]["NewImage"]
    services().store.client.put_item(TableName=services().store.table, Item=raw)
    # The sample is a Fargate job; moto's RunTask cannot yet attach awsvpc interfaces
    # (it crashes reading an ENI's private DNS name), so the tests run it on EC2.
    item = services().jobs.get(JOB_ID)
    assert item is not None and item.doc["platformCapabilities"] == ["FARGATE"]
    item.doc["platformCapabilities"] = ["EC2"]
    services().store.replace(item)


def test_create_compute_environment_event_creates_its_ecs_cluster(
    functions: dict[str, Function], moto_env: dict[str, Any]
) -> None:
    out = functions["ApiFunction"].invoke(load_event("api/createcomputeenvironment.json"))
    assert out["statusCode"] == 200, out
    name = json.loads(out["body"])["computeEnvironmentName"]
    _, described = api_call(functions["ApiFunction"], "describecomputeenvironments", {})
    (ce,) = described["computeEnvironments"]
    assert ce["computeEnvironmentName"] == name
    assert ce["status"] == "VALID" and ce["state"] == "ENABLED"
    clusters = moto_env["ecs"].describe_clusters(clusters=[ce["ecsClusterArn"]])["clusters"]
    assert clusters and clusters[0]["status"] == "ACTIVE"
    assert set(clusters[0].get("capacityProviders", [])) == {"FARGATE", "FARGATE_SPOT"}


def test_bad_json_event_is_a_client_exception(functions: dict[str, Function]) -> None:
    out = functions["ApiFunction"].invoke(load_event("api/bad-json.json"))
    assert out["statusCode"] == 400
    assert (
        out["multiValueHeaders"]["x-amzn-errortype"] == ["ClientException"]
        or out.get("headers", {}).get("x-amzn-errortype") == "ClientException"
    )
    body = json.loads(out["body"])
    assert body["__type"] == "ClientException"
    assert "not valid JSON" in body["message"]


@pytest.mark.usefixtures("ec2_environment")
def test_submit_event_replayed_with_same_invocation_id_gives_one_job(
    functions: dict[str, Function]
) -> None:
    event = load_event("api/submitjob.json")
    first = functions["ApiFunction"].invoke(event)
    again = functions["ApiFunction"].invoke(load_event("api/submitjob.json"))
    assert first["statusCode"] == again["statusCode"] == 200
    assert json.loads(first["body"])["jobId"] == json.loads(again["body"])["jobId"]
    listed = services().jobs.list({"jobQueue": "default", "jobStatus": "RUNNABLE"})  # admitted at once
    assert len(listed["jobSummaryList"]) == 1


def test_no_room_on_the_cluster_keeps_the_job_runnable_without_spending_an_attempt(
    functions: dict[str, Function], ec2_environment: dict[str, Any], moto_env: dict[str, Any]
) -> None:
    """RunTask before any instance has registered (a fresh environment scaling out) must
    not fail the job: it waits RUNNABLE, as in AWS Batch, and starts once there is room."""
    ecs = moto_env["ecs"]
    cluster = ec2_environment["cluster"]
    for arn in ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]:
        ecs.deregister_container_instance(cluster=cluster, containerInstance=arn, force=True)
    _seed_sample_job()
    functions["SchedulerFunction"].invoke(load_event("scheduler/stream-insert.json"))
    job = _job()
    assert job["status"] == "RUNNABLE", job
    assert job["statusReason"].startswith("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"), job["statusReason"]
    assert job["attempts"] == [] and "taskArn" not in job["container"]
    assert services().store.counters("CE#ec2", "USAGE").get("mvcpus", 0) == 0

    functions["SchedulerFunction"].invoke(load_event("scheduler/tick.json"))
    assert _job()["status"] == "RUNNABLE"  # held: instances take a while to come up

    instance = moto_env["ec2"].run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                             InstanceType="m5.xlarge")["Instances"][0]
    ecs.register_container_instance(
        cluster=cluster, instanceIdentityDocument=json.dumps({"instanceId": instance["InstanceId"]})
    )
    clock.advance(31)
    functions["SchedulerFunction"].invoke(load_event("scheduler/tick.json"))
    job = _job()
    assert job["status"] == "STARTING", job
    task = ecs.describe_tasks(cluster=cluster, tasks=[job["container"]["taskArn"]])["tasks"][0]
    env = {e["name"]: e["value"] for e in task["overrides"]["containerOverrides"][0]["environment"]}
    assert env["AWS_BATCH_JOB_ATTEMPT"] == "1"


def test_capacity_freed_on_the_environment_ends_the_wait_for_room(
    functions: dict[str, Function], ec2_environment: dict[str, Any], moto_env: dict[str, Any]
) -> None:
    """A job that found no room is tried again as soon as a task of its environment ends,
    not only when its hold runs out."""
    api, scheduler = functions["ApiFunction"], functions["SchedulerFunction"]
    ecs, cluster = moto_env["ecs"], ec2_environment["cluster"]
    _, first = api_call(api, "submitjob", {"jobName": "first", "jobQueue": "default", "jobDefinition": "hello"})
    scheduler.invoke(load_event("scheduler/tick.json"))
    assert _job(first["jobId"])["status"] == "STARTING"
    # The cluster's only instance leaves: the next job finds no room and is held.
    for arn in ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]:
        ecs.deregister_container_instance(cluster=cluster, containerInstance=arn, force=True)
    _, second = api_call(api, "submitjob", {"jobName": "second", "jobQueue": "default", "jobDefinition": "hello"})
    scheduler.invoke(load_event("scheduler/tick.json"))
    assert _job(second["jobId"])["statusReason"].startswith("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY")
    instance = moto_env["ec2"].run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                             InstanceType="m5.xlarge")["Instances"][0]
    ecs.register_container_instance(
        cluster=cluster, instanceIdentityDocument=json.dumps({"instanceId": instance["InstanceId"]})
    )
    scheduler.invoke(load_event("scheduler/tick.json"))
    assert _job(second["jobId"])["status"] == "RUNNABLE"  # still held: nothing was freed
    stopped = load_event("events/ecs-task-stopped.json")
    task = ecs.describe_tasks(cluster=cluster, tasks=[_job(first["jobId"])["container"]["taskArn"]])["tasks"][0]
    stopped["detail"].update(taskArn=task["taskArn"], startedBy=task["startedBy"], overrides=task["overrides"])
    functions["EventsFunction"].invoke(stopped)
    assert _job(first["jobId"])["status"] == "SUCCEEDED"
    scheduler.invoke(load_event("scheduler/tick.json"))  # no clock moved: the release did it
    assert _job(second["jobId"])["status"] == "STARTING"


@pytest.mark.usefixtures("ec2_environment")
def test_describe_and_list_tags_events(functions: dict[str, Function]) -> None:
    out = functions["ApiFunction"].invoke(load_event("api/describejobs.json"))
    assert out["statusCode"] == 200
    assert json.loads(out["body"]) == {"jobs": []}  # unknown ids are skipped, as in AWS
    out = functions["ApiFunction"].invoke(load_event("api/listtags.json"))
    body = json.loads(out["body"])
    assert out["statusCode"] in (200, 400), body
    if out["statusCode"] == 400:
        assert body["__type"] == "ClientException" and "does not exist" in body["message"]


def test_stream_insert_promotes_and_runs_the_job_on_ecs(
    functions: dict[str, Function], ec2_environment: dict[str, Any], moto_env: dict[str, Any]
) -> None:
    _seed_sample_job()
    result = functions["SchedulerFunction"].invoke(load_event("scheduler/stream-insert.json"))
    assert result == {"batchItemFailures": []}
    job = _job()
    assert job["status"] == "STARTING"
    tasks = moto_env["ecs"].describe_tasks(cluster=ec2_environment["cluster"], tasks=[job["container"]["taskArn"]])[
        "tasks"
    ]
    assert len(tasks) == 1
    env = {e["name"]: e["value"] for e in tasks[0]["overrides"]["containerOverrides"][0]["environment"]}
    assert env["AWS_BATCH_JOB_ID"] == JOB_ID
    assert env["AWS_BATCH_JOB_ATTEMPT"] == "1"
    assert env["AWS_BATCH_JQ_NAME"] == "default"
    assert env["AWS_BATCH_CE_NAME"] == "ec2"
    # The same record again (Lambda may deliver twice) starts nothing more.
    functions["SchedulerFunction"].invoke(load_event("scheduler/stream-insert.json"))
    assert len(moto_env["ecs"].list_tasks(cluster=ec2_environment["cluster"])["taskArns"]) == 1


@pytest.mark.usefixtures("ec2_environment")
def test_task_events_end_the_attempt_once(functions: dict[str, Function]) -> None:
    _seed_sample_job()
    functions["SchedulerFunction"].invoke(load_event("scheduler/stream-insert.json"))
    task_arn = _job()["container"]["taskArn"]
    running = load_event("events/ecs-task-running.json")
    running["detail"]["taskArn"] = task_arn
    functions["EventsFunction"].invoke(running)
    job = _job()
    assert job["status"] == "RUNNING"
    assert job["container"]["logStreamName"] == f"hello/default/{task_arn.rsplit('/', 1)[-1]}"
    assert job["startedAt"] >= job["createdAt"] - 10**9  # the sample's clock, not ours
    stopped = load_event("events/ecs-task-stopped.json")
    stopped["detail"]["taskArn"] = task_arn
    functions["EventsFunction"].invoke(stopped)
    functions["EventsFunction"].invoke(stopped)  # a duplicate delivery changes nothing
    job = _job()
    assert job["status"] == "SUCCEEDED"
    assert job["statusReason"] == "Essential container in task exited"
    assert len(job["attempts"]) == 1
    assert job["attempts"][0]["container"]["exitCode"] == 0
    assert services().store.counters("CE#ec2", "USAGE").get("mvcpus", 0) == 0


@pytest.mark.usefixtures("ec2_environment", "moto_env")
def test_a_stopped_event_before_the_running_one_still_records_running(
    functions: dict[str, Function]
) -> None:
    _seed_sample_job()
    functions["SchedulerFunction"].invoke(load_event("scheduler/stream-insert.json"))
    task_arn = _job()["container"]["taskArn"]
    table = services().store.table
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    stream_arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard, ShardIteratorType="LATEST")
    stopped = load_event("events/ecs-task-stopped.json")
    stopped["detail"]["taskArn"] = task_arn
    functions["EventsFunction"].invoke(stopped)
    running = load_event("events/ecs-task-running.json")
    running["detail"]["taskArn"] = task_arn
    functions["EventsFunction"].invoke(running)  # late: changes nothing
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    moves = [r["dynamodb"]["NewImage"]["status"]["S"] for r in records if r["dynamodb"]["Keys"]["sk"]["S"] == "JOB"]
    assert moves == ["RUNNING", "SUCCEEDED"]
    job = _job()
    assert job["status"] == "SUCCEEDED" and len(job["attempts"]) == 1
    assert job["startedAt"] == job["attempts"][0]["startedAt"]
    assert services().store.counters("CE#ec2", "USAGE").get("mvcpus", 0) == 0


@pytest.mark.usefixtures("ec2_environment")
def test_failed_task_with_attempts_left_goes_back_to_runnable(
    functions: dict[str, Function]
) -> None:
    _seed_sample_job()
    item = services().jobs.get(JOB_ID)
    assert item is not None
    item.doc["retryStrategy"] = {"attempts": 2}
    services().store.replace(item)
    functions["SchedulerFunction"].invoke(load_event("scheduler/stream-insert.json"))
    stopped = load_event("events/ecs-task-stopped.json")
    stopped["detail"]["taskArn"] = _job()["container"]["taskArn"]
    stopped["detail"]["containers"][0]["exitCode"] = 1
    functions["EventsFunction"].invoke(stopped)
    job = _job()
    assert len(job["attempts"]) == 1 and job["attempts"][0]["container"]["exitCode"] == 1
    # Retried at once by the same scheduling pass logic: RUNNABLE, then STARTING again.
    functions["SchedulerFunction"].invoke(load_event("scheduler/tick.json"))
    job = _job()
    assert job["status"] == "STARTING"


@pytest.mark.usefixtures("ec2_environment")
def test_tick_sweeps_a_job_whose_stream_record_was_lost(
    functions: dict[str, Function]
) -> None:
    _seed_sample_job()
    functions["SchedulerFunction"].invoke(load_event("scheduler/tick.json"))
    assert _job()["status"] == "STARTING"


@pytest.mark.usefixtures("ec2_environment")
def test_spot_warning_for_an_unknown_instance_stops_nothing(
    functions: dict[str, Function]
) -> None:
    out = functions["EventsFunction"].invoke(load_event("events/spot-interruption.json"))
    assert out == {"status": "INTERRUPTED", "stopped": 0}


def test_spot_warning_stops_the_attempts_on_that_instance_and_retries_them(
    functions: dict[str, Function], ec2_environment: dict[str, Any], moto_env: dict[str, Any]
) -> None:
    _seed_sample_job()
    item = services().jobs.get(JOB_ID)
    assert item is not None
    item.doc["retryStrategy"] = {"attempts": 2}
    services().store.replace(item)
    functions["SchedulerFunction"].invoke(load_event("scheduler/stream-insert.json"))
    task_arn = _job()["container"]["taskArn"]
    warning = load_event("events/spot-interruption.json")
    warning["detail"]["instance-id"] = ec2_environment["instance"]
    assert functions["EventsFunction"].invoke(warning) == {"status": "INTERRUPTED", "stopped": 1}
    task = moto_env["ecs"].describe_tasks(cluster=ec2_environment["cluster"], tasks=[task_arn])["tasks"][0]
    assert task["desiredStatus"] == "STOPPED"
    # ECS then reports the task stopped; the attempt ends with the Host EC2 reason.
    stopped = load_event("events/ecs-task-stopped.json")
    stopped["detail"].update(taskArn=task_arn, stopCode="TerminationNotice", stoppedReason="Host EC2 terminated")
    stopped["detail"]["containers"][0].pop("exitCode")
    functions["EventsFunction"].invoke(stopped)
    job = _job()
    expected = f"Host EC2 (instance {ec2_environment['instance']}) terminated."
    assert job["attempts"][0]["statusReason"] == expected
    assert job["status"] in ("RUNNABLE", "STARTING")  # retried: attempts left


@pytest.mark.usefixtures("moto_env")
def test_unknown_job_in_task_event_is_ignored(functions: dict[str, Function]) -> None:
    out = functions["EventsFunction"].invoke(load_event("events/ecs-task-stopped.json"))
    assert out == {"status": None}
    assert boto3.client("dynamodb").scan(TableName="batchplane-test")["Count"] == 0


def test_stored_item_round_trips() -> None:
    item = Item(pk="p", sk="s", doc={"a": 1.5, "b": [1, {"c": "d"}]}, version=3, extra={"status": "X"})
    again = Item.from_dynamo(item.to_dynamo())
    assert again.doc == item.doc and again.version == 3 and again.extra == {"status": "X"}


# -- the array fan-out's chunks ---------------------------------------------------------


def _array(api: Function, size: int, **request: Any) -> tuple[str, dict[str, Any]]:
    """An array parent as SubmitJob made it, and the sample chunk event aimed at it."""
    status, out = api_call(api, "submitjob", {
        "jobName": "sweep", "jobQueue": "default", "jobDefinition": "hello",
        "arrayProperties": {"size": size}, **request,
    })
    assert status == 200, out
    return out["jobId"], {**load_event("arrays/materialize-chunk.json"), "parentId": out["jobId"]}


def _summary(api: Function, parent_id: str) -> dict[str, int]:
    status, out = api_call(api, "describejobs", {"jobs": [parent_id]})
    assert status == 200, out
    return dict(out["jobs"][0]["arrayProperties"]["statusSummary"])


def _children(api: Function, parent_id: str) -> list[str]:
    status, out = api_call(api, "listjobs", {"arrayJobId": parent_id, "maxResults": 1000})
    assert status == 200, out
    return [j["status"] for j in out["jobSummaryList"]]


@pytest.mark.usefixtures("ec2_environment")
def test_a_retried_chunk_counts_and_creates_each_child_once(
    functions: dict[str, Function]
) -> None:
    api = functions["ApiFunction"]
    parent, chunk = _array(api, 20)
    assert functions["ArraysFunction"].invoke(chunk) == {"changed": 20}
    assert functions["ArraysFunction"].invoke(chunk) == {"changed": 0}
    assert _summary(api, parent) == {"RUNNABLE": 20}
    assert _children(api, parent) == ["RUNNABLE"] * 20


@pytest.mark.usefixtures("ec2_environment")
def test_a_chunk_stopped_midway_finishes_on_its_retry_with_exact_counts(
    functions: dict[str, Function], monkeypatch: Any
) -> None:
    """The chunk's counts are written before its children: a child created by the first
    try and cancelled before the retry moves from RUNNABLE, never below zero."""
    api = functions["ApiFunction"]
    parent, chunk = _array(api, 20)
    store = services().store
    put = store.transact_or_put
    made = []

    def crash_after_five(op: dict[str, Any]) -> None:
        if len(made) == 5:
            raise RuntimeError("Lambda timed out")
        put(op)
        made.append(op)

    monkeypatch.setattr(store, "transact_or_put", crash_after_five)
    try:
        functions["ArraysFunction"].invoke(chunk)
    except RuntimeError:
        pass
    else:
        raise AssertionError("the first try should have stopped midway")
    monkeypatch.setattr(store, "transact_or_put", put)
    assert _summary(api, parent) == {"RUNNABLE": 20} and len(_children(api, parent)) == 5
    status, _ = api_call(api, "canceljob", {"jobId": f"{parent}:0", "reason": "not this one"})
    assert status == 200
    assert functions["ArraysFunction"].invoke(chunk) == {"changed": 15}
    assert _summary(api, parent) == {"RUNNABLE": 19, "FAILED": 1}
    assert _children(api, parent) == ["FAILED"] + ["RUNNABLE"] * 19


@pytest.mark.usefixtures("ec2_environment")
def test_a_sequential_chunk_counts_its_first_child_runnable_and_the_rest_pending(
    functions: dict[str, Function]
) -> None:
    api = functions["ApiFunction"]
    parent, chunk = _array(api, 20, dependsOn=[{"type": "SEQUENTIAL"}])
    functions["ArraysFunction"].invoke(chunk)
    assert _summary(api, parent) == {"RUNNABLE": 1, "PENDING": 19}
    assert _children(api, parent) == ["RUNNABLE"] + ["PENDING"] * 19


@pytest.mark.usefixtures("ec2_environment")
def test_the_fanout_done_event_settles_an_array_whose_children_all_ended(
    functions: dict[str, Function]
) -> None:
    api = functions["ApiFunction"]
    parent, chunk = _array(api, 20)
    functions["ArraysFunction"].invoke(chunk)
    for i in range(20):
        assert api_call(api, "canceljob", {"jobId": f"{parent}:{i}", "reason": "r"})[0] == 200
    jobs = services().arrays.jobs
    item = jobs.get(parent)
    assert item is not None
    item.doc["status"] = "PENDING"  # as the scheduler leaves it when it starts the fan-out
    jobs.save(item)
    done = {**load_event("arrays/fanout-done.json"), "parentId": parent}
    assert functions["ArraysFunction"].invoke(done) == {"done": True}
    assert _job(parent)["status"] == "FAILED"
    assert _job(parent)["statusReason"] == "Array Child Job failed"


@pytest.mark.usefixtures("ec2_environment")
def test_an_expired_array_parent_takes_its_counter_and_chunk_items_with_it(
    functions: dict[str, Function]
) -> None:
    """DynamoDB's TTL deletes the parent item; its stream record (the sample REMOVE)
    deletes the ARRAY# items, which no TTL of their own could time safely. The children
    expire on their own."""
    removed = load_event("scheduler/stream-remove-expired-array.json")
    raw = removed["Records"][0]["dynamodb"]["OldImage"]
    parent = Item.from_dynamo({k: ({"B": base64.b64decode(v["B"])} if "B" in v else v) for k, v in raw.items()})
    parent_id = parent.doc["jobId"]
    parent.doc["status"] = parent.extra["status"] = "PENDING"  # as it was while fanning out
    parent.version = 0
    services().store.put_new(parent)
    chunk = load_event("arrays/materialize-chunk.json")
    assert chunk["parentId"] == parent_id
    assert functions["ArraysFunction"].invoke(chunk) == {"changed": 20}
    table = services().store.table
    client = services().store.client

    def array_items() -> int:
        return client.query(TableName=table, KeyConditionExpression="pk = :p",
                            ExpressionAttributeValues={":p": {"S": f"ARRAY#{parent_id}"}})["Count"]

    assert array_items() == 17  # 16 counters and the chunk's marker
    client.delete_item(TableName=table, Key={"pk": {"S": parent.pk}, "sk": {"S": parent.sk}})
    assert functions["SchedulerFunction"].invoke(removed) == {"batchItemFailures": []}
    assert array_items() == 0
    assert services().jobs.get(f"{parent_id}:19") is not None


@pytest.mark.usefixtures("ec2_environment")
def test_a_released_dependency_edge_expires_with_the_jobs(
    functions: dict[str, Function]
) -> None:
    api = functions["ApiFunction"]
    _, first = api_call(api, "submitjob", {"jobName": "a", "jobQueue": "default", "jobDefinition": "hello"})
    _, second = api_call(api, "submitjob", {"jobName": "b", "jobQueue": "default", "jobDefinition": "hello",
                                            "dependsOn": [{"jobId": first["jobId"]}]})
    deps = services().arrays.dependencies
    deps.admit(second["jobId"])
    edge_key = {"pk": {"S": f"DEPS#{first['jobId']}"}, "sk": {"S": f"JOB#{second['jobId']}"}}
    client, table = services().store.client, services().store.table
    assert "expiresAt" not in client.get_item(TableName=table, Key=edge_key)["Item"]
    assert api_call(api, "canceljob", {"jobId": first["jobId"], "reason": "stop"})[0] == 200
    deps.on_finished(first["jobId"], "FAILED")
    edge = client.get_item(TableName=table, Key=edge_key)["Item"]
    assert edge["released"] == {"S": "fail"}
    assert int(edge["expiresAt"]["N"]) > clock.now_ms() // 1000 + 86400


@pytest.mark.usefixtures("ec2_environment")
def test_a_parent_cancelled_while_its_chunk_runs_leaves_no_child_of_that_chunk_runnable(
    functions: dict[str, Function], monkeypatch: Any
) -> None:
    """The cancel cascade may pass a chunk's indexes before the children exist; the
    chunk, reading its parent after creating them, cancels them itself."""
    api = functions["ApiFunction"]
    parent, chunk = _array(api, 20)
    jobs = services().arrays.jobs
    store = services().store
    put = store.transact_or_put
    made = []

    def cancel_midway(op: dict[str, Any]) -> None:
        put(op)
        made.append(op)
        if len(made) == 5:  # what CancelJob writes on the parent before its cascade starts
            item = jobs.get(parent)
            assert item is not None
            assert parent_cancel_decision(item.doc, "wrong inputs", terminate=False)
            item.extra["fanout"] = "cancel"
            jobs.save(item)

    monkeypatch.setattr(store, "transact_or_put", cancel_midway)
    assert functions["ArraysFunction"].invoke(chunk) == {"changed": 20}
    assert _children(api, parent) == ["FAILED"] * 20
    assert _summary(api, parent) == {"FAILED": 20}
    cascade = {**chunk, "action": "cancel"}
    assert functions["ArraysFunction"].invoke(cascade) == {"changed": 0}


def _refusing(real: Any, times: int, reasons: list[str]) -> Any:
    """``transact_write_items`` refused ``times`` times with these cancellation reasons
    (moto runs one transaction at a time, so it never answers TransactionConflict)."""
    calls = {"n": 0}

    def transact_write_items(**request: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= times:
            raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                               "CancellationReasons": [{"Code": c} for c in reasons]}, "TransactWriteItems")
        return real(**request)

    return transact_write_items


@pytest.mark.usefixtures("ec2_environment")
def test_a_chunk_meeting_a_concurrent_transaction_still_counts_its_children(
    functions: dict[str, Function], monkeypatch: Any
) -> None:
    """On AWS, the fan-out's parallel chunks write the same counter items: DynamoDB
    refuses one transaction while another holds an item. That is not the chunk's marker
    existing; read as one, the chunk's children would go uncounted for good."""
    api = functions["ApiFunction"]
    parent, chunk = _array(api, 20)
    client = services().store.client
    monkeypatch.setattr("batchplane.store.dynamodb.time.sleep", lambda _: None)
    monkeypatch.setattr(client, "transact_write_items",
                        _refusing(client.transact_write_items, 2, ["None", "TransactionConflict"]))
    assert functions["ArraysFunction"].invoke(chunk) == {"changed": 20}
    assert _summary(api, parent) == {"RUNNABLE": 20}


@pytest.mark.usefixtures("ec2_environment")
def test_a_transaction_refused_for_a_reason_other_than_its_conditions_is_no_conflict(
    functions: dict[str, Function], monkeypatch: Any
) -> None:
    """Throttled, or still busy after every retry: the chunk fails (its state machine
    retries it) instead of taking the refusal for an earlier try's marker."""
    api = functions["ApiFunction"]
    parent, chunk = _array(api, 20)
    client = services().store.client
    real = client.transact_write_items
    slept: list[float] = []
    monkeypatch.setattr("batchplane.store.dynamodb.time.sleep", slept.append)
    for reasons in (["None", "ThrottlingError"], ["TransactionConflict"]):
        monkeypatch.setattr(client, "transact_write_items", _refusing(real, 99, reasons))
        with pytest.raises(ClientError):
            functions["ArraysFunction"].invoke(chunk)
    assert len(slept) == BUSY_TRIES - 1  # backed off between the busy tries only
    monkeypatch.setattr(client, "transact_write_items", real)
    assert functions["ArraysFunction"].invoke(chunk) == {"changed": 20}
    assert _summary(api, parent) == {"RUNNABLE": 20}


# -- the tick reconciles attempts whose task events never came ----------------------------


def _started_on_ecs(functions: dict[str, Function], *, running: bool) -> str:
    """The sample job dispatched to moto's ECS (and RUNNING, if asked); its task ARN."""
    _seed_sample_job()
    functions["SchedulerFunction"].invoke(load_event("scheduler/stream-insert.json"))
    task_arn = _job()["container"]["taskArn"]
    if running:
        event = load_event("events/ecs-task-running.json")
        event["detail"]["taskArn"] = task_arn
        functions["EventsFunction"].invoke(event)
        assert _job()["status"] == "RUNNING"
    return task_arn


def test_the_tick_ends_an_attempt_whose_stop_event_was_lost(
    functions: dict[str, Function], ec2_environment: dict[str, Any], moto_env: dict[str, Any]
) -> None:
    """EventBridge invokes the events function at most three times for an event; if all
    three fail, the STOPPED event is gone. The tick asks ECS about attempts that have
    been STARTING or RUNNING for two minutes. (moto reports exit code 0 for every
    container of a stopped task.)"""
    task_arn = _started_on_ecs(functions, running=True)
    moto_env["ecs"].stop_task(cluster=ec2_environment["cluster"], task=task_arn,
                              reason="Essential container in task exited")
    functions["SchedulerFunction"].invoke(load_event("scheduler/tick.json"))
    assert _job()["status"] == "RUNNING"  # too recent: its event may still be on the way
    clock.advance(121)
    functions["SchedulerFunction"].invoke(load_event("scheduler/tick.json"))
    job = _job()
    assert job["status"] == "SUCCEEDED"
    assert job["statusReason"] == "Essential container in task exited"
    assert len(job["attempts"]) == 1 and job["attempts"][0]["container"]["exitCode"] == 0
    assert services().store.counters("CE#ec2", "USAGE").get("mvcpus", 0) == 0
    stopped = load_event("events/ecs-task-stopped.json")
    stopped["detail"]["taskArn"] = task_arn
    functions["EventsFunction"].invoke(stopped)  # the event turning up after all: no change
    assert len(_job()["attempts"]) == 1


@pytest.mark.usefixtures("ec2_environment")
def test_the_tick_ends_an_attempt_whose_task_ecs_no_longer_knows(
    functions: dict[str, Function]
) -> None:
    _started_on_ecs(functions, running=True)
    item = services().jobs.get(JOB_ID)
    assert item is not None
    lost = item.doc["container"]["taskArn"].rsplit("/", 1)[0] + "/0123456789abcdef0123456789abcdef"
    item.doc["container"]["taskArn"] = lost  # ECS forgets a stopped task after an hour
    services().store.replace(item)
    clock.advance(121)
    functions["SchedulerFunction"].invoke(load_event("scheduler/tick.json"))
    job = _job()
    assert job["status"] == "FAILED"
    assert job["statusReason"].startswith("Task lost")
    assert services().store.counters("CE#ec2", "USAGE").get("mvcpus", 0) == 0


@pytest.mark.usefixtures("ec2_environment")
def test_the_tick_moves_on_an_attempt_whose_running_event_was_lost(
    functions: dict[str, Function], monkeypatch: Any
) -> None:
    task_arn = _started_on_ecs(functions, running=False)
    launcher = services().scheduler.launcher
    describe = launcher.describe

    def running(arns: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        # moto moves a task one status on per DescribeTasks call, past RUNNING by now;
        # ECS would say RUNNING for a task still at work.
        tasks, missing = describe(arns)
        return [{**t, "lastStatus": "RUNNING"} for t in tasks], missing

    monkeypatch.setattr(launcher, "describe", running)
    clock.advance(121)
    functions["SchedulerFunction"].invoke(load_event("scheduler/tick.json"))
    job = _job()
    assert job["status"] == "RUNNING"
    assert job["container"]["taskArn"] == task_arn


@pytest.mark.usefixtures("ec2_environment")
def test_a_fanout_whose_retries_ran_out_ends_its_parent_with_the_reason(
    functions: dict[str, Function]
) -> None:
    """The state machine's Catch step (events/arrays/fanout-failed.json): the parent is
    not left PENDING for good."""
    api = functions["ApiFunction"]
    parent, _ = _array(api, 4)
    event = {**load_event("arrays/fanout-failed.json"), "parentId": parent}
    assert functions["ArraysFunction"].invoke(event) == {"recorded": True}
    status, out = api_call(api, "describejobs", {"jobs": [parent]})
    job = out["jobs"][0]
    assert (job["status"], job["statusReason"]) == (
        "FAILED", 'Array fan-out failed: {"errorMessage": "Task timed out after 300.00 seconds"}')
