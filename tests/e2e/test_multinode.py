"""Multi-node parallel jobs through the unmodified boto3 client against the local stack:
each node is a process on its own virtual instance with its own loopback address, the
main node is placed first and the others once it runs, the job ends as its main node
does, a retry reruns every node, TerminateJob stops them all; and AWS's validation."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .support import ec2_resources, job_output, uniq, wait_done, wait_status

ROOT = Path(__file__).resolve().parents[2]
PI_RING = ROOT / "examples" / "multinode" / "pi_ring.py"


@pytest.fixture(scope="module")
def queue(batch: Any) -> str:
    ce = uniq("mnp-ce")
    batch.create_compute_environment(computeEnvironmentName=ce, type="MANAGED",
                                     computeResources=ec2_resources(maxvCpus=32))
    name = uniq("mnp-q")
    batch.create_job_queue(jobQueueName=name, priority=1,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}])
    return name


def _container(command: list[str], vcpus: str = "1") -> dict[str, Any]:
    return {"image": "python:3.11", "command": command,
            "resourceRequirements": [{"type": "VCPU", "value": vcpus}, {"type": "MEMORY", "value": "256"}]}


def _definition(batch: Any, ranges: list[tuple[str, list[str]]], num: int = 3, main: int = 0, **extra: Any) -> str:
    name = uniq("mnp")
    batch.register_job_definition(
        jobDefinitionName=name, type="multinode",
        nodeProperties={"numNodes": num, "mainNode": main,
                        "nodeRangeProperties": [{"targetNodes": t, "container": _container(c)} for t, c in ranges]},
        **extra)
    return name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _nodes(batch: Any, job_id: str, num: int) -> list[dict[str, Any]]:
    found = {j["jobId"]: j for j in batch.describe_jobs(jobs=[f"{job_id}#{i}" for i in range(num)])["jobs"]}
    return [found[f"{job_id}#{i}"] for i in range(num)]


def _wait_nodes(batch: Any, job_id: str, num: int, *statuses: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        nodes = _nodes(batch, job_id, num) if len(batch.describe_jobs(jobs=[f"{job_id}#0"])["jobs"]) else []
        if len(nodes) == num and all(n["status"] in statuses for n in nodes):
            return nodes
        assert time.monotonic() < deadline, [(n["jobId"], n["status"]) for n in nodes]
        time.sleep(0.05)


def test_three_nodes_rendezvous_at_the_main_nodes_address_and_the_job_succeeds(
    batch: Any, logs: Any, queue: str
) -> None:
    """The distributed example (examples/multinode): the other nodes send their darts
    over TCP to the main node at AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS."""
    command = [sys.executable, str(PI_RING), "Ref::port", "20000"]
    jd = _definition(batch, [("0:", command)], num=3, main=1)
    job = batch.submit_job(jobName=uniq("ring"), jobQueue=queue, jobDefinition=jd,
                           parameters={"port": str(_free_port())})["jobId"]
    done = wait_done(batch, job, timeout=60)
    assert done["status"] == "SUCCEEDED", done
    assert done["nodeProperties"]["numNodes"] == 3 and len(done["attempts"]) == 1
    nodes = _wait_nodes(batch, job, 3, "SUCCEEDED", "FAILED")  # the other nodes end just after
    assert [n["nodeDetails"] for n in nodes] == [{"nodeIndex": i, "isMainNode": i == 1} for i in range(3)]
    assert all(n["jobName"] == done["jobName"] for n in nodes)
    main_out = job_output(batch, logs, nodes[1], expect="pi ~=")
    assert any("from 60,000 darts on nodes [0, 1, 2]" in m for m in main_out), main_out
    # Each node on its own instance, with its own address; the others reached the main's.
    addresses = [n["container"]["networkInterfaces"][0]["privateIpv4Address"] for n in nodes]
    assert len(set(addresses)) == 3 and all(a.startswith("127.") for a in addresses), addresses
    assert len({n["container"]["containerInstanceArn"] for n in nodes}) == 3
    for i in (0, 2):
        out = job_output(batch, logs, nodes[i], expect="pi ~=")
        assert any(f"to the main node at {addresses[1]}" in m for m in out), out
    listed = batch.list_jobs(multiNodeJobId=job)["jobSummaryList"]
    assert sorted(j["jobId"] for j in listed) == [f"{job}#{i}" for i in range(3)]
    assert {j["nodeProperties"]["nodeIndex"]: j["nodeProperties"]["isMainNode"] for j in listed} == {
        0: False, 1: True, 2: False}


def test_each_node_sees_the_variables_of_its_range_and_overrides(
    batch: Any, logs: Any, queue: str, tmp_path: Path
) -> None:
    show = ["sh", "-c", "echo $ROLE node=$AWS_BATCH_JOB_NODE_INDEX of=$AWS_BATCH_JOB_NUM_NODES "
                        "main=$AWS_BATCH_JOB_MAIN_NODE_INDEX at=${AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS:-none} "
                        f"attempt=$AWS_BATCH_JOB_ATTEMPT; touch {tmp_path}/$AWS_BATCH_JOB_NODE_INDEX; sleep 60"]
    # The main node ends the job: it waits until both other nodes have printed.
    main = ["sh", "-c", f"echo main; while [ $(ls {tmp_path} | wc -l) -lt 2 ]; do sleep 0.05; done"]
    jd = _definition(batch, [("0:", show), ("0", main)], num=2, main=0)
    job = batch.submit_job(
        jobName=uniq("vars"), jobQueue=queue, jobDefinition=jd,
        nodeOverrides={"numNodes": 3, "nodePropertyOverrides": [
            {"targetNodes": "1:", "containerOverrides": {"environment": [{"name": "ROLE", "value": "worker"}]}}]},
    )["jobId"]
    assert wait_done(batch, job, timeout=60)["status"] == "SUCCEEDED"
    nodes = _wait_nodes(batch, job, 3, "SUCCEEDED", "FAILED")
    main_address = nodes[0]["container"]["networkInterfaces"][0]["privateIpv4Address"]
    assert job_output(batch, logs, nodes[0], expect="main") == ["main"]
    for i in (1, 2):
        expected = f"worker node={i} of=3 main=0 at={main_address} attempt=1"
        assert expected in job_output(batch, logs, nodes[i], expect=expected)


def test_a_main_node_that_exits_1_fails_the_job_and_stops_the_others(
    batch: Any, queue: str, tmp_path: Path
) -> None:
    flag = tmp_path / "go"
    jd = _definition(batch, [("0", ["sh", "-c", f"while [ ! -f {flag} ]; do sleep 0.05; done; exit 1"]),
                             ("1:", ["sleep", "60"])], num=3)
    job = batch.submit_job(jobName=uniq("fail"), jobQueue=queue, jobDefinition=jd)["jobId"]
    _wait_nodes(batch, job, 3, "RUNNING")
    assert wait_status(batch, job, "RUNNING")["startedAt"]
    flag.touch()
    done = wait_done(batch, job, timeout=30)
    assert done["status"] == "FAILED" and done["attempts"][0]["container"]["exitCode"] == 1, done
    nodes = _wait_nodes(batch, job, 3, "SUCCEEDED", "FAILED")
    assert [n["status"] for n in nodes] == ["FAILED"] * 3
    for other in nodes[1:]:
        assert other["statusReason"] == "The main node of the multi-node parallel job exited", other
        assert len(other["attempts"]) == 1


def test_a_retried_job_runs_every_node_again(batch: Any, queue: str, tmp_path: Path) -> None:
    """Attempt 1's main node exits 1 once both others ran; attempt 2's exits 0: the job
    succeeds, and every node ran twice."""
    wait_others = (f"while [ $(ls {tmp_path} | grep -c \"^a$AWS_BATCH_JOB_ATTEMPT-\") -lt 2 ]; do sleep 0.05; done; "
                   "[ $AWS_BATCH_JOB_ATTEMPT = 2 ]")
    mark = f"touch {tmp_path}/a$AWS_BATCH_JOB_ATTEMPT-$AWS_BATCH_JOB_NODE_INDEX; sleep 60"
    jd = _definition(batch, [("0", ["sh", "-c", wait_others]), ("1:", ["sh", "-c", mark])], num=3,
                     retryStrategy={"attempts": 2})
    job = batch.submit_job(jobName=uniq("retry"), jobQueue=queue, jobDefinition=jd)["jobId"]
    done = wait_done(batch, job, timeout=60)
    assert done["status"] == "SUCCEEDED", done
    assert [a["container"]["exitCode"] for a in done["attempts"]] == [1, 0]
    nodes = _wait_nodes(batch, job, 3, "SUCCEEDED", "FAILED")
    assert [len(n["attempts"]) for n in nodes] == [2, 2, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a1-1", "a1-2", "a2-1", "a2-2"]


def test_terminate_job_stops_every_node(batch: Any, queue: str) -> None:
    jd = _definition(batch, [("0:", ["sleep", "60"])], num=3)
    job = batch.submit_job(jobName=uniq("term"), jobQueue=queue, jobDefinition=jd)["jobId"]
    _wait_nodes(batch, job, 3, "RUNNING")
    batch.terminate_job(jobId=job, reason="enough")
    done = wait_done(batch, job, timeout=30)
    assert done["status"] == "FAILED" and done["statusReason"] == "enough" and done["isTerminated"], done
    nodes = _wait_nodes(batch, job, 3, "FAILED")
    assert all(len(n["attempts"]) == 1 for n in nodes)


def test_cancel_job_of_a_job_whose_main_node_waits_ends_every_node(batch: Any) -> None:
    ce = uniq("mnp-off")
    batch.create_compute_environment(computeEnvironmentName=ce, type="MANAGED", state="DISABLED",
                                     computeResources=ec2_resources(maxvCpus=8))
    queue = uniq("mnp-off-q")
    batch.create_job_queue(jobQueueName=queue, priority=1,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}])
    jd = _definition(batch, [("0:", ["true"])], num=2)
    job = batch.submit_job(jobName=uniq("cancel"), jobQueue=queue, jobDefinition=jd)["jobId"]
    assert [n["status"] for n in _wait_nodes(batch, job, 2, "RUNNABLE", "PENDING")] == ["RUNNABLE", "PENDING"]
    batch.cancel_job(jobId=job, reason="not now")
    assert wait_done(batch, job)["statusReason"] == "not now"
    assert [n["status"] for n in _wait_nodes(batch, job, 2, "FAILED")] == ["FAILED", "FAILED"]


# -- what AWS refuses --------------------------------------------------------------------------

_OK = {"targetNodes": "0:", "container": _container(["true"])}


@pytest.mark.parametrize(("properties", "words"), [
    ({"numNodes": 3, "mainNode": 0, "nodeRangeProperties": [{**_OK, "targetNodes": "0:1"},
                                                            {**_OK, "targetNodes": "1:2"}]}, ["overlap"]),
    ({"numNodes": 3, "mainNode": 0, "nodeRangeProperties": [{**_OK, "targetNodes": "0:1"}]}, ["node 2", "cover"]),
    ({"numNodes": 2, "mainNode": 0, "nodeRangeProperties": [{**_OK, "targetNodes": "0:4"}]}, ["reaches node 4"]),
    ({"numNodes": 2, "mainNode": 2, "nodeRangeProperties": [_OK]}, ["mainNode"]),
    ({"numNodes": 0, "mainNode": 0, "nodeRangeProperties": [_OK]}, ["numNodes"]),
    ({"numNodes": 2, "mainNode": 0, "nodeRangeProperties": [{**_OK, "targetNodes": "a:b"}]}, ["not a node range"]),
    ({"numNodes": 2, "mainNode": 0, "nodeRangeProperties": [_OK] * 6}, ["1 to 5"]),
    ({"numNodes": 2, "mainNode": 0, "nodeRangeProperties": [{"targetNodes": "0:"}]}, ["container"]),
])
def test_register_refuses_node_ranges_aws_refuses(batch: Any, properties: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(ClientError) as refused:
        batch.register_job_definition(jobDefinitionName=uniq("bad"), type="multinode", nodeProperties=properties)
    error = refused.value.response["Error"]
    assert error["Code"] == "ClientException", error
    for word in words:
        assert word.lower() in error["Message"].lower(), error


def test_nested_ranges_are_accepted_and_the_inner_one_wins(batch: Any) -> None:
    jd = _definition(batch, [("0:3", ["echo", "outer"]), ("1:2", ["echo", "inner"])], num=4)
    (described,) = batch.describe_job_definitions(jobDefinitionName=jd)["jobDefinitions"]
    assert [r["targetNodes"] for r in described["nodeProperties"]["nodeRangeProperties"]] == ["0:3", "1:2"]


def test_multinode_on_fargate_is_refused(batch: Any) -> None:
    with pytest.raises(ClientError) as refused:
        batch.register_job_definition(jobDefinitionName=uniq("fg"), type="multinode", platformCapabilities=["FARGATE"],
                                      nodeProperties={"numNodes": 1, "mainNode": 0, "nodeRangeProperties": [_OK]})
    assert "Fargate" in refused.value.response["Error"]["Message"]


@pytest.mark.parametrize(("extra", "words"), [
    ({"arrayProperties": {"size": 2}}, ["array"]),
    ({"containerOverrides": {"command": ["true"]}}, ["nodeOverrides"]),
    ({"nodeOverrides": {"numNodes": 1}}, ["lower boundary"]),
    ({"nodeOverrides": {"numNodes": 5, "nodePropertyOverrides": [{"targetNodes": "7",
                                                                  "containerOverrides": {}}]}}, ["reaches node 7"]),
])
def test_submit_refuses_what_aws_refuses(batch: Any, queue: str, extra: dict[str, Any], words: list[str]) -> None:
    jd = _definition(batch, [("0", ["true"]), ("1:", ["true"])], num=2, main=1)
    with pytest.raises(ClientError) as refused:
        batch.submit_job(jobName=uniq("bad"), jobQueue=queue, jobDefinition=jd, **extra)
    error = refused.value.response["Error"]
    assert error["Code"] == "ClientException", error
    for word in words:
        assert word.lower() in error["Message"].lower(), error


def test_num_nodes_override_needs_an_open_ended_range(batch: Any, queue: str) -> None:
    jd = _definition(batch, [("0", ["true"]), ("1:2", ["true"])], num=3)
    with pytest.raises(ClientError) as refused:
        batch.submit_job(jobName=uniq("bad"), jobQueue=queue, jobDefinition=jd, nodeOverrides={"numNodes": 4})
    assert "open upper boundary" in refused.value.response["Error"]["Message"]


def test_node_overrides_on_a_container_job_are_refused(batch: Any, queue: str) -> None:
    name = uniq("plain")
    batch.register_job_definition(jobDefinitionName=name, type="container", containerProperties=_container(["true"]))
    with pytest.raises(ClientError) as refused:
        batch.submit_job(jobName=uniq("bad"), jobQueue=queue, jobDefinition=name, nodeOverrides={"numNodes": 2})
    assert "containerOverrides" in refused.value.response["Error"]["Message"]


@pytest.mark.usefixtures("queue")
def test_list_jobs_of_something_else_than_a_multinode_job_is_refused(batch: Any) -> None:
    with pytest.raises(ClientError) as refused:
        batch.list_jobs(multiNodeJobId="no-such-job")
    assert "not a multi-node parallel job" in refused.value.response["Error"]["Message"]

