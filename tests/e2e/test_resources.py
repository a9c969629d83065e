"""Compute environments, job queues, job definitions, scheduling policies and tags through
the unmodified boto3 client."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .support import Env, ec2_resources, fargate_resources, make_client, uniq


def client_error(call: Any, *words: str, **kwargs: Any) -> str:
    """Calls ``call(**kwargs)``, expects a ClientException naming ``words``; its message."""
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    error = info.value.response["Error"]
    assert error["Code"] == "ClientException", info.value.response
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    for word in words:
        assert word.lower() in error["Message"].lower(), (word, error["Message"])
    return error["Message"]


def _gone_or_deleted(found: list[dict[str, Any]]) -> bool:
    return not found or found[0].get("status") in ("DELETED", "DELETING")


def test_compute_environment_lifecycle(batch: Any, endpoint: str) -> None:
    ecs = make_client("ecs", endpoint)
    name = uniq("ce")
    created = batch.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        state="ENABLED",
        computeResources=ec2_resources(maxvCpus=8, instanceTypes=["m5", "c5.xlarge"]),
        serviceRole="arn:aws:iam::123456789012:role/AWSBatchServiceRole",
        tags={"team": "e2e"},
    )
    arn = created["computeEnvironmentArn"]
    assert created["computeEnvironmentName"] == name
    assert arn.startswith("arn:aws:batch:us-east-1:") and arn.endswith(
        f":compute-environment/{name}"
    )

    for ref in (name, arn):
        found = batch.describe_compute_environments(computeEnvironments=[ref])[
            "computeEnvironments"
        ]
        assert [c["computeEnvironmentName"] for c in found] == [name]
    ce = found[0]
    assert (ce["type"], ce["state"], ce["status"]) == ("MANAGED", "ENABLED", "VALID")
    assert ce["computeEnvironmentArn"] == arn
    assert ce["tags"] == {"team": "e2e"}
    resources = ce["computeResources"]
    assert resources["type"] == "EC2"
    assert (resources["minvCpus"], resources["maxvCpus"]) == (0, 8)
    assert resources["instanceTypes"] == ["m5", "c5.xlarge"]
    assert resources["subnets"] == ["subnet-0e2e0001"]
    assert resources["securityGroupIds"] == ["sg-0e2e0001"]
    assert resources["instanceRole"].endswith("instance-profile/ecsInstanceRole")
    # Its ECS cluster exists, named as AWS Batch names them.
    cluster = ce["ecsClusterArn"]
    assert cluster.split("/")[-1].startswith(f"{name}_Batch_")
    assert cluster in ecs.list_clusters()["clusterArns"]

    client_error(
        batch.create_compute_environment,
        name,
        "exists",
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources=ec2_resources(),
    )

    updated = batch.update_compute_environment(
        computeEnvironment=name, computeResources={"minvCpus": 2, "maxvCpus": 16}
    )
    assert updated["computeEnvironmentArn"] == arn
    ce = batch.describe_compute_environments(computeEnvironments=[arn])["computeEnvironments"][0]
    assert (ce["computeResources"]["minvCpus"], ce["computeResources"]["maxvCpus"]) == (2, 16)
    assert ce["computeResources"]["instanceTypes"] == ["m5", "c5.xlarge"]

    client_error(batch.delete_compute_environment, "DISABLED", computeEnvironment=name)
    batch.update_compute_environment(computeEnvironment=arn, state="DISABLED")
    ce = batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"][0]
    assert ce["state"] == "DISABLED"
    batch.delete_compute_environment(computeEnvironment=arn)
    assert _gone_or_deleted(
        batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"]
    )
    client_error(batch.update_compute_environment, name, computeEnvironment=name, state="ENABLED")
    # ...and is deleted with it (INACTIVE, as ECS shows a deleted cluster for a while).
    deadline = time.monotonic() + 10
    while ecs.describe_clusters(clusters=[cluster])["clusters"][0]["status"] != "INACTIVE":
        assert time.monotonic() < deadline, f"{cluster} outlived its compute environment"
        time.sleep(0.02)


def test_fargate_compute_environment(batch: Any) -> None:
    name = uniq("fce")
    batch.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources=fargate_resources(maxvCpus=4),
    )
    ce = batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"][0]
    assert ce["computeResources"]["type"] == "FARGATE"
    assert ce["computeResources"]["maxvCpus"] == 4
    assert ce["status"] == "VALID"
    # Fargate has no instances: instance settings are refused.
    client_error(
        batch.create_compute_environment,
        "instanceTypes",
        computeEnvironmentName=uniq("fce"),
        type="MANAGED",
        computeResources=fargate_resources(instanceTypes=["m5"]),
    )


def test_managed_ec2_needs_its_required_fields(batch: Any) -> None:
    for missing in ("instanceTypes", "subnets", "instanceRole"):
        resources = ec2_resources()
        del resources[missing]
        client_error(
            batch.create_compute_environment,
            missing,
            computeEnvironmentName=uniq("ce"),
            type="MANAGED",
            computeResources=resources,
        )
    client_error(
        batch.create_compute_environment,
        "minvCpus",
        computeEnvironmentName=uniq("ce"),
        type="MANAGED",
        computeResources=ec2_resources(minvCpus=10, maxvCpus=4),
    )


def test_queue_lifecycle_and_ce_in_use(batch: Any, env: Env) -> None:
    ce = uniq("ce")
    batch.create_compute_environment(
        computeEnvironmentName=ce, type="MANAGED", computeResources=ec2_resources()
    )
    name = uniq("queue")
    created = batch.create_job_queue(
        jobQueueName=name,
        priority=5,
        state="ENABLED",
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
    )
    arn = created["jobQueueArn"]
    assert arn.endswith(f":job-queue/{name}")
    for ref in (name, arn):
        found = batch.describe_job_queues(jobQueues=[ref])["jobQueues"]
        assert [q["jobQueueName"] for q in found] == [name]
    queue = found[0]
    assert (queue["state"], queue["status"], queue["priority"]) == ("ENABLED", "VALID", 5)
    assert queue["computeEnvironmentOrder"] == [
        {
            "order": 1,
            "computeEnvironment": batch.describe_compute_environments(computeEnvironments=[ce])[
                "computeEnvironments"
            ][0]["computeEnvironmentArn"],
        }
    ]

    client_error(
        batch.create_job_queue,
        name,
        "exists",
        jobQueueName=name,
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
    )

    batch.update_job_queue(jobQueue=name, priority=900)
    assert batch.describe_job_queues(jobQueues=[name])["jobQueues"][0]["priority"] == 900

    # A disabled compute environment still in a queue's order cannot be deleted.
    batch.update_compute_environment(computeEnvironment=ce, state="DISABLED")
    client_error(batch.delete_compute_environment, name, computeEnvironment=ce)

    client_error(batch.delete_job_queue, "DISABLED", jobQueue=name)
    batch.update_job_queue(jobQueue=arn, state="DISABLED")
    assert batch.describe_job_queues(jobQueues=[name])["jobQueues"][0]["state"] == "DISABLED"
    # A DISABLED queue refuses new jobs.
    client_error(
        batch.submit_job, "DISABLED", jobName="refused", jobQueue=name, jobDefinition=env.jobdef
    )
    batch.delete_job_queue(jobQueue=arn)
    assert _gone_or_deleted(batch.describe_job_queues(jobQueues=[name])["jobQueues"])
    # With its queue gone, the environment can go too.
    batch.delete_compute_environment(computeEnvironment=ce)
    assert _gone_or_deleted(
        batch.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"]
    )


def test_queue_cannot_mix_ec2_and_fargate(batch: Any, env: Env) -> None:
    client_error(
        batch.create_job_queue,
        "FARGATE",
        jobQueueName=uniq("mixed"),
        priority=1,
        computeEnvironmentOrder=[
            {"order": 1, "computeEnvironment": env.ec2_ce},
            {"order": 2, "computeEnvironment": env.fargate_ce},
        ],
    )
    client_error(
        batch.create_job_queue,
        "does-not-exist",
        jobQueueName=uniq("q"),
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "does-not-exist"}],
    )


def _paged(batch: Any, operation: str, key: str, field: str, **kwargs: Any) -> list[str]:
    """Every item, two per page, through boto3's own paginator (it follows nextToken and
    stops on a repeated token)."""
    seen: list[str] = []
    pages = batch.get_paginator(operation).paginate(PaginationConfig={"PageSize": 2}, **kwargs)
    for page in pages:
        assert len(page[key]) <= 2
        seen += [item[field] for item in page[key]]
    assert len(seen) == len(set(seen)), f"{operation}: a page repeated an item"
    return seen


def test_describe_paging(batch: Any) -> None:
    ces = [uniq("page-ce") for _ in range(3)]
    for n in ces:
        batch.create_compute_environment(
            computeEnvironmentName=n, type="MANAGED", computeResources=ec2_resources()
        )
    queues = [uniq("page-q") for _ in range(3)]
    for n in queues:
        batch.create_job_queue(
            jobQueueName=n,
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ces[0]}],
        )
    jd = uniq("page-jd")
    for _ in range(3):
        batch.register_job_definition(
            jobDefinitionName=jd,
            type="container",
            containerProperties={"image": "busybox", "vcpus": 1, "memory": 64},
        )
    names = _paged(
        batch, "describe_compute_environments", "computeEnvironments", "computeEnvironmentName"
    )
    assert set(ces) <= set(names)
    assert set(queues) <= set(_paged(batch, "describe_job_queues", "jobQueues", "jobQueueName"))
    arns = _paged(batch, "describe_job_definitions", "jobDefinitions", "jobDefinitionArn")
    assert {f"{jd}:{rev}" for rev in (1, 2, 3)} <= {a.rsplit("/", 1)[1] for a in arns}


def test_job_definition_revisions(batch: Any, env: Env) -> None:
    name = uniq("jd")
    props = {"image": "busybox", "vcpus": 1, "memory": 64}
    arns = [
        batch.register_job_definition(
            jobDefinitionName=name,
            type="container",
            containerProperties={**props, "command": ["echo", str(i)]},
        )
        for i in (1, 2, 3)
    ]
    assert [a["revision"] for a in arns] == [1, 2, 3]
    assert arns[0]["jobDefinitionArn"].endswith(f":job-definition/{name}:1")

    every = batch.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"]
    assert sorted(d["revision"] for d in every) == [1, 2, 3]
    assert {d["status"] for d in every} == {"ACTIVE"}
    by_rev = batch.describe_job_definitions(jobDefinitions=[f"{name}:2"])["jobDefinitions"]
    assert [(d["revision"], d["containerProperties"]["command"]) for d in by_rev] == [
        (2, ["echo", "2"])
    ]
    by_arn = batch.describe_job_definitions(jobDefinitions=[arns[0]["jobDefinitionArn"]])[
        "jobDefinitions"
    ]
    assert [d["revision"] for d in by_arn] == [1]
    by_name = batch.describe_job_definitions(jobDefinitions=[name])["jobDefinitions"]
    assert sorted(d["revision"] for d in by_name) == [1, 2, 3]

    # Deregistering the latest makes the previous ACTIVE revision what the name means.
    batch.deregister_job_definition(jobDefinition=arns[2]["jobDefinitionArn"])
    batch.deregister_job_definition(jobDefinition=f"{name}:3")  # again: no error
    statuses = {
        d["revision"]: d["status"]
        for d in batch.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"]
    }
    assert statuses == {1: "ACTIVE", 2: "ACTIVE", 3: "INACTIVE"}
    active = batch.describe_job_definitions(jobDefinitionName=name, status="ACTIVE")[
        "jobDefinitions"
    ]
    assert sorted(d["revision"] for d in active) == [1, 2]

    job = batch.submit_job(jobName=uniq("j"), jobQueue=env.held_queue, jobDefinition=name)
    described = batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]
    assert described["jobDefinition"] == arns[1]["jobDefinitionArn"]
    batch.cancel_job(jobId=job["jobId"], reason="only checking its definition")
    client_error(
        batch.submit_job,
        f"{name}:3",
        "INACTIVE",
        jobName=uniq("j"),
        jobQueue=env.queue,
        jobDefinition=f"{name}:3",
    )

    # A new revision after a deregistration still counts up.
    assert (
        batch.register_job_definition(
            jobDefinitionName=name,
            type="container",
            containerProperties={**props, "command": ["true"]},
        )["revision"]
        == 4
    )

    for rev in (1, 2, 4):
        batch.deregister_job_definition(jobDefinition=f"{name}:{rev}")
    client_error(batch.submit_job, name, jobName=uniq("j"), jobQueue=env.queue, jobDefinition=name)
    client_error(
        batch.submit_job,
        "no-such-definition",
        jobName=uniq("j"),
        jobQueue=env.queue,
        jobDefinition="no-such-definition",
    )
    client_error(batch.deregister_job_definition, f"{name}:99", jobDefinition=f"{name}:99")


def test_scheduling_policy_crud(batch: Any, env: Env) -> None:
    name = uniq("policy")
    created = batch.create_scheduling_policy(
        name=name,
        tags={"k": "v"},
        fairsharePolicy={
            "shareDecaySeconds": 3600,
            "computeReservation": 10,
            "shareDistribution": [
                {"shareIdentifier": "teamA", "weightFactor": 0.5},
                {"shareIdentifier": "teamB*"},
            ],
        },
    )
    arn = created["arn"]
    assert created["name"] == name and arn.endswith(f":scheduling-policy/{name}")

    found = batch.describe_scheduling_policies(arns=[arn])["schedulingPolicies"]
    assert len(found) == 1
    policy = found[0]
    assert (policy["name"], policy["arn"]) == (name, arn)
    assert policy["fairsharePolicy"]["shareDecaySeconds"] == 3600
    assert policy["fairsharePolicy"]["computeReservation"] == 10
    assert {s["shareIdentifier"] for s in policy["fairsharePolicy"]["shareDistribution"]} == {
        "teamA",
        "teamB*",
    }
    assert policy.get("tags") == {"k": "v"}

    listed: list[str] = []
    kwargs: dict[str, Any] = {"maxResults": 1}
    for _ in range(1000):
        page = batch.list_scheduling_policies(**kwargs)
        listed += [p["arn"] for p in page["schedulingPolicies"]]
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert arn in listed and len(listed) == len(set(listed))

    batch.update_scheduling_policy(
        arn=arn,
        fairsharePolicy={
            "shareDecaySeconds": 60,
            "computeReservation": 0,
            "shareDistribution": [{"shareIdentifier": "teamC", "weightFactor": 2}],
        },
    )
    policy = batch.describe_scheduling_policies(arns=[arn])["schedulingPolicies"][0]
    assert policy["fairsharePolicy"]["shareDecaySeconds"] == 60
    assert [s["shareIdentifier"] for s in policy["fairsharePolicy"]["shareDistribution"]] == [
        "teamC"
    ]

    client_error(batch.create_scheduling_policy, "exists", name=name)

    # In use by a fair-share queue: cannot be deleted; the queue wants shareIdentifier.
    queue = uniq("fair")
    batch.create_job_queue(
        jobQueueName=queue,
        priority=1,
        schedulingPolicyArn=arn,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env.held_ce}],
    )
    assert (
        batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["schedulingPolicyArn"] == arn
    )
    client_error(
        batch.submit_job,
        "shareIdentifier",
        jobName=uniq("j"),
        jobQueue=queue,
        jobDefinition=env.jobdef,
    )
    job = batch.submit_job(
        jobName=uniq("j"),
        jobQueue=queue,
        jobDefinition=env.jobdef,
        shareIdentifier="teamC",
        schedulingPriorityOverride=5,
    )
    batch.cancel_job(jobId=job["jobId"], reason="fair-share check done")
    client_error(batch.delete_scheduling_policy, queue, arn=arn)
    batch.update_job_queue(jobQueue=queue, state="DISABLED")
    batch.delete_job_queue(jobQueue=queue)

    batch.delete_scheduling_policy(arn=arn)
    assert batch.describe_scheduling_policies(arns=[arn])["schedulingPolicies"] == []
    assert arn not in [p["arn"] for p in batch.list_scheduling_policies()["schedulingPolicies"]]
    client_error(batch.update_scheduling_policy, arn=arn, fairsharePolicy={"shareDecaySeconds": 1})


def _tag_round_trip(batch: Any, arn: str, initial: dict[str, str]) -> None:
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == initial
    batch.tag_resource(resourceArn=arn, tags={"env": "test", "owner": "e2e"})
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {
        **initial,
        "env": "test",
        "owner": "e2e",
    }
    batch.tag_resource(resourceArn=arn, tags={"env": "prod"})  # overwrite one
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"]["env"] == "prod"
    batch.untag_resource(resourceArn=arn, tagKeys=["env", "not-there"])
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {**initial, "owner": "e2e"}
    batch.untag_resource(resourceArn=arn, tagKeys=["owner", *initial])
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {}


def test_tags_on_queue_and_job_definition(batch: Any) -> None:
    ce = uniq("ce")
    batch.create_compute_environment(
        computeEnvironmentName=ce, type="MANAGED", computeResources=ec2_resources()
    )
    queue_arn = batch.create_job_queue(
        jobQueueName=uniq("tagged"),
        priority=1,
        tags={"created": "yes"},
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
    )["jobQueueArn"]
    _tag_round_trip(batch, queue_arn, {"created": "yes"})

    jd_arn = batch.register_job_definition(
        jobDefinitionName=uniq("tagged"),
        type="container",
        tags={"from": "register"},
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 64, "command": ["true"]},
    )["jobDefinitionArn"]
    _tag_round_trip(batch, jd_arn, {"from": "register"})

    # Tags show up in the Describe output as well.
    batch.tag_resource(resourceArn=queue_arn, tags={"visible": "1"})
    assert batch.describe_job_queues(jobQueues=[queue_arn])["jobQueues"][0]["tags"] == {
        "visible": "1"
    }


def test_tag_errors(batch: Any, env: Env) -> None:
    unknown = "arn:aws:batch:us-east-1:123456789012:job-queue/no-such-queue"
    client_error(batch.list_tags_for_resource, "no-such-queue", resourceArn=unknown)
    client_error(batch.tag_resource, "no-such-queue", resourceArn=unknown, tags={"a": "b"})
    client_error(batch.list_tags_for_resource, "not-an-arn", resourceArn="not-an-arn")
    queue_arn = batch.describe_job_queues(jobQueues=[env.queue])["jobQueues"][0]["jobQueueArn"]
    client_error(batch.tag_resource, "aws:", resourceArn=queue_arn, tags={"aws:reserved": "x"})
    client_error(
        batch.tag_resource, "50", resourceArn=queue_arn, tags={f"k{i}": "v" for i in range(51)}
    )


def test_arns_of_another_region_or_account_name_nothing_here(batch: Any, env: Env) -> None:
    queue = f"arn:aws:batch:eu-west-1:999999999999:job-queue/{env.queue}"
    assert batch.describe_job_queues(jobQueues=[queue])["jobQueues"] == []
    client_error(batch.tag_resource, "does not exist", resourceArn=queue, tags={"a": "b"})
    client_error(batch.list_tags_for_resource, "does not exist", resourceArn=queue)
    client_error(
        batch.submit_job, "does not exist", jobName="x", jobQueue=queue, jobDefinition=env.jobdef
    )
    definition = f"arn:aws:batch:us-east-1:999999999999:job-definition/{env.jobdef}:1"
    client_error(
        batch.submit_job,
        "does not exist",
        jobName="x",
        jobQueue=env.queue,
        jobDefinition=definition,
    )
    assert batch.describe_job_definitions(jobDefinitions=[definition])["jobDefinitions"] == []
    ce = f"arn:aws:batch:us-west-2:123456789012:compute-environment/{env.ec2_ce}"
    assert (
        batch.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"] == []
    )
    client_error(batch.update_compute_environment, "does not exist", computeEnvironment=ce,
                 state="DISABLED")  # fmt: skip


def test_job_arn_of_another_account_names_nothing_here(batch: Any, env: Env) -> None:
    job_id = batch.submit_job(jobName=uniq("j"), jobQueue=env.held_queue, jobDefinition=env.jobdef)[
        "jobId"
    ]
    try:
        foreign = f"arn:aws:batch:eu-west-1:999999999999:job/{job_id}"
        assert batch.describe_jobs(jobs=[foreign])["jobs"] == []
    finally:
        batch.cancel_job(jobId=job_id, reason="foreign ARN check done")
