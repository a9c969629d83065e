"""API latency: SubmitJob and DescribeJobs through the HTTP port with the unmodified boto3
``batch`` client, the API handler alone (in-process, no HTTP), and moto's own AWS Batch
emulation over HTTP as a peer. The targets take turns in small rounds, so that the noise
of a shared machine falls on all of them alike and their ratios stay meaningful."""

from __future__ import annotations

import json
import logging
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from moto.server import ThreadedMotoServer

from .harness import QUEUE, TRUE_JOB, client
from .stats import p50_p99, summary_ms

if TYPE_CHECKING:
    from .harness import Harness
    from .report import Report

Call = Callable[[], Any]


@dataclass
class Target:
    name: str
    submit: Call
    describe: Call
    samples: dict[str, list[float]] = field(
        default_factory=lambda: {"SubmitJob": [], "DescribeJobs": []})
    submitted: list[str] = field(default_factory=list)


def _http_target(h: Harness) -> Target:
    t = Target("batchplane (HTTP, boto3)", submit=lambda: None, describe=lambda: None)

    def submit() -> None:
        t.submitted.append(h.submit(TRUE_JOB, name="api-latency"))

    t.submit = submit
    t.describe = lambda: h.batch.describe_jobs(jobs=[t.submitted[0]])
    return t


def _handler_target(h: Harness) -> Target:
    """The ApiFunction invoked in-process with the API Gateway proxy event the HTTP front
    builds (LocalStack.call_api): no socket, no SigV4, no botocore serialization."""
    t = Target("batchplane handler (in-process)", submit=lambda: None, describe=lambda: None)
    auth = ("AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/batch/aws4_request, "
            "SignedHeaders=host, Signature=0")

    def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
        # The SDK sends a fresh invocation id per call: SubmitJob stores its idempotency key.
        headers = {"Content-Type": "application/json", "Authorization": auth,
                   "amz-sdk-invocation-id": str(uuid.uuid4())}
        status, _, data = h.stack.call_api("POST", path, headers, json.dumps(body).encode())
        if status != HTTPStatus.OK:
            raise RuntimeError(f"{path} answered {status}: {data[:200]!r}")
        return json.loads(data)

    def submit() -> None:
        out = call("/v1/submitjob", {"jobName": "api-handler", "jobQueue": QUEUE,
                                     "jobDefinition": TRUE_JOB})
        t.submitted.append(out["jobId"])

    t.submit = submit
    t.describe = lambda: call("/v1/describejobs", {"jobs": [t.submitted[0]]})
    return t


class MotoPeer:
    """moto's AWS Batch backend on its own ThreadedMotoServer. Without Docker moto cannot
    run jobs, so its batch_simple backend is used (jobs are marked SUCCEEDED at once):
    only the latency of the two API calls is comparable, not what happens after."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/config", method="POST",
            data=json.dumps({"batch": {"use_docker": False}}).encode(),
        )
        urllib.request.urlopen(request, timeout=10).read()  # noqa: S310 - loopback moto
        self.batch = client("batch", self.endpoint)
        iam = client("iam", self.endpoint)
        role = iam.create_role(RoleName="bench-batch-service", AssumeRolePolicyDocument="{}")
        ce = self.batch.create_compute_environment(
            computeEnvironmentName="bench-peer-ce", type="UNMANAGED", state="ENABLED",
            serviceRole=role["Role"]["Arn"],
        )
        order = [{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}]
        self.batch.create_job_queue(jobQueueName="bench-peer-q", priority=1, state="ENABLED",
                                    computeEnvironmentOrder=order)
        self.batch.register_job_definition(
            jobDefinitionName="bench-peer-true", type="container",
            containerProperties={"image": "busybox", "command": ["true"], "resourceRequirements": [
                {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}]},
        )

    def target(self) -> Target:
        t = Target("moto batch (HTTP, boto3)", submit=lambda: None, describe=lambda: None)

        def submit() -> None:
            out = self.batch.submit_job(jobName="api-latency", jobQueue="bench-peer-q",
                                        jobDefinition="bench-peer-true")
            t.submitted.append(out["jobId"])

        t.submit = submit
        t.describe = lambda: self.batch.describe_jobs(jobs=[t.submitted[0]])
        return t

    def stop(self) -> None:
        self.server.stop()


def _rounds(targets: list[Target], calls: int, deadline: float, per_round: int = 5) -> None:
    """Each target does ``per_round`` calls in turn until each has done ``calls``, or
    (quick mode on a busy machine) half the time until ``deadline`` went by, per operation."""
    for t in targets:  # warm-up: connections, first-call imports, the first job
        t.submit()
        t.describe()
    for i, operation in enumerate(("SubmitJob", "DescribeJobs")):
        done = 0
        stop = time.monotonic() + (deadline - time.monotonic()) / (2 - i)
        while done < calls and (done < 2 * per_round or time.monotonic() < stop):
            n = min(per_round, calls - done)
            for t in targets:
                fn = t.submit if operation == "SubmitJob" else t.describe
                for _ in range(n):
                    start = time.perf_counter()
                    fn()
                    t.samples[operation].append(time.perf_counter() - start)
            done += n


def run(h: Harness, report: Report, *, calls: int, api: bool, peer: bool,
        deadline: float = float("inf")) -> None:
    targets: list[Target] = []
    if api:
        targets += [_http_target(h), _handler_target(h)]
    moto = None
    if peer:
        if not api:
            targets.append(_http_target(h))
        moto = MotoPeer()
        targets.append(moto.target())
    try:
        _rounds(targets, calls, deadline)
    finally:
        if moto is not None:
            moto.stop()
    # The jobs submitted here run meanwhile; let them finish before the next section.
    ours = [j for t in targets if not t.name.startswith("moto") for j in t.submitted]
    h.wait(ours, timeout=120)
    h.settle()

    stats = {t.name: {op: summary_ms(s) for op, s in t.samples.items()} for t in targets}
    report.data["api"] = {"calls_per_operation_asked": calls, "targets": stats}
    http = stats.get(targets[0].name) if targets else None
    if api:
        handler = stats["batchplane handler (in-process)"]
        for op in ("SubmitJob", "DescribeJobs"):
            assert http is not None
            report.add("API latency", f"{op} via HTTP p50 / p99", p50_p99(http[op], 1),
                       note=f"{http[op]['n']} sequential calls, unmodified boto3 client, "
                            "no retries")
            report.add("API latency", f"{op} handler alone p50 / p99", p50_p99(handler[op], 1),
                       note="ApiFunction invoked in-process with an API Gateway proxy event")
    if peer:
        ours = stats[targets[0].name]
        theirs = stats["moto batch (HTTP, boto3)"]
        report.data["peer"] = {
            "compared": "p50 latency of SubmitJob and DescribeJobs (one job id) over HTTP with "
                        "the same boto3 client; moto's batch_simple backend (no Docker: jobs "
                        "do not run), interleaved rounds in one process",
            "batchplane": ours, "moto": theirs,
        }
        for op in ("SubmitJob", "DescribeJobs"):
            ratio = ours[op]["p50_ms"] / theirs[op]["p50_ms"] if theirs[op]["p50_ms"] else None
            report.data["peer"][f"{op}_p50_ratio"] = ratio
            report.add(
                "Peer: moto batch", f"{op} p50 batchplane / moto",
                f"{ours[op]['p50_ms']:.1f} / {theirs[op]['p50_ms']:.1f} ms "
                f"= {ratio:.2f}x" if ratio else "-",
                note="API latency only: moto keeps jobs in memory and cannot run them "
                     "without Docker; batchplane persists every job in DynamoDB (moto)",
            )
