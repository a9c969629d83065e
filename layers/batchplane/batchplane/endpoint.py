"""A batchplane endpoint as any client sees it: the boto3 clients made from the standard
AWS settings, and reading jobs, queues and logs through the public Batch API and
CloudWatch Logs. The job commands (cli_jobs.py) and the dashboard both read through it."""

from __future__ import annotations

import functools
import os
import sys
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from .signing import sign_for_api_gateway

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

LOG_GROUP = "/aws/batch/job"
ACTIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
ENDED = ("SUCCEEDED", "FAILED")
DEFAULT_REGION = "us-east-1"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
DESCRIBE_MAX = 100  # job IDs per DescribeJobs call
SNAPSHOT_MAX = 100  # jobs GetJobQueueSnapshot shows at the front of a queue


class CliError(Exception):
    """A problem to report in one line (no such job ...), never with a traceback."""


class Clients:
    """The boto3 clients of one command, made from its connection options."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
        self.region = self.session.region_name or DEFAULT_REGION
        self.endpoint_url = args.endpoint_url

    def client(self, service: str, endpoint_url: str | None, *, aws: bool = False) -> Any:
        """Without endpoint_url, where boto3's configuration says (AWS_ENDPOINT_URL[_BATCH|
        _LOGS], the profile's endpoint_url), else AWS; ``aws``: AWS's own endpoint."""
        config = Config(retries={"mode": "standard"},
                        ignore_configured_endpoint_urls=aws)  # type: ignore[call-arg]  # botocore-stubs lag
        return self.session.client(service, region_name=self.region,  # type: ignore[call-overload]  # stubs:
                                   endpoint_url=endpoint_url, config=config)  # one overload per literal name

    @cached_property
    def batch(self) -> Any:
        batch = self.client("batch", self.endpoint_url)
        if _is_api_gateway(batch.meta.endpoint_url):
            sign_for_api_gateway(batch)  # a deployed batchplane is an API Gateway API
        return batch

    @cached_property
    def logs(self) -> Any:
        # `batchplane local up` serves every service on its one port. A deployed batchplane
        # serves Batch only; its jobs log to CloudWatch Logs.
        batch_url = self.batch.meta.endpoint_url
        if urlsplit(batch_url).hostname in LOCAL_HOSTS:
            return self.client("logs", batch_url)
        logs = self.client("logs", None)
        if _is_api_gateway(logs.meta.endpoint_url):  # AWS_ENDPOINT_URL names the deployed API
            logs = self.client("logs", None, aws=True)
        return logs


def _is_api_gateway(url: str) -> bool:
    return ".execute-api." in (urlsplit(url).hostname or "")


def describe_jobs(batch: Any, job_ids: list[str]) -> list[dict[str, Any]]:
    """DescribeJobs for every ID, in their order; a CliError names any it does not know."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(job_ids), DESCRIBE_MAX):
        for job in batch.describe_jobs(jobs=job_ids[start : start + DESCRIBE_MAX])["jobs"]:
            found[job["jobId"]] = found[job["jobArn"]] = job
    missing = [j for j in job_ids if j not in found]
    if missing:
        raise CliError(f"no such job: {', '.join(missing)} (DescribeJobs knows none by that ID)")
    return [found[j] for j in job_ids]


def describe_job(batch: Any, job_id: str) -> dict[str, Any]:
    return describe_jobs(batch, [job_id])[0]


def array_size(job: dict[str, Any]) -> int | None:
    """The number of children of an array parent; None for any other job."""
    return (job.get("arrayProperties") or {}).get("size")


def log_stream(job: dict[str, Any]) -> str | None:
    """The log stream of the job's latest attempt, once it has one."""
    return (job.get("container") or {}).get("logStreamName")


def read_log(logs: Any, stream: str, token: str | None) -> tuple[list[str], str | None]:
    """The stream's messages after ``token`` (from its start without one), and the token
    to read on from. A stream not created yet has no messages."""
    messages: list[str] = []
    while True:
        request = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
        try:
            page = logs.get_log_events(**request, **({"nextToken": token} if token else {}))
        except ClientError as e:
            if e.response["Error"]["Code"] == "ResourceNotFoundException":
                return messages, token
            raise
        messages += [event["message"] for event in page["events"]]
        if not page["events"] or page.get("nextForwardToken") in (None, token):
            return messages, page.get("nextForwardToken") or token
        token = page["nextForwardToken"]


def list_queue(batch: Any, queue: str, statuses: list[str], limit: int) -> list[dict[str, Any]]:
    """JobSummaries of one queue: of the given statuses, or of every status (a ListJobs
    filter lists them all, newest first). Reads on until ``limit`` jobs that are not array
    children are in, so that children (folded later) do not crowd out other jobs."""
    requests: list[dict[str, Any]]
    if statuses:
        requests = [{"jobStatus": s} for s in statuses]
    else:
        requests = [{"filters": [{"name": "AFTER_CREATED_AT", "values": ["0"]}]}]
    summaries: list[dict[str, Any]] = []
    for request in requests:
        listed = 0
        pages = batch.get_paginator("list_jobs").paginate(
            jobQueue=queue, **request, PaginationConfig={"PageSize": 1000}
        )
        for page in pages:
            for summary in page["jobSummaryList"]:
                summaries.append({**summary, "jobQueue": queue})
                listed += ":" not in summary["jobId"]
            if listed >= limit:
                break
    return summaries


def fold_arrays(batch: Any, summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Array children listed beside their parent leave the listing; the parent carries
    its statusSummary (DescribeJobs) instead."""
    listed = {s["jobId"] for s in summaries}
    rows = [s for s in summaries if s["jobId"].rpartition(":")[0] not in listed]
    parents = [r for r in rows if array_size(r)]
    if parents:
        described = {j["jobId"]: j for j in describe_jobs(batch, [p["jobId"] for p in parents])}
        for row in parents:
            summary = (described[row["jobId"]].get("arrayProperties") or {}).get("statusSummary", {})
            row["arrayProperties"] = {**row["arrayProperties"], "statusSummary": summary}
    return rows


def job_queues(batch: Any, names: list[str] | None = None) -> list[dict[str, Any]]:
    pages = batch.get_paginator("describe_job_queues").paginate(**({"jobQueues": names} if names else {}))
    return [queue for page in pages for queue in page["jobQueues"]]


def when(ms: int | None) -> str:
    """A time stamp of the API (epoch milliseconds) in local time, short when it is today."""
    if not ms:
        return ""
    moment = datetime.fromtimestamp(ms / 1000)
    return moment.strftime("%H:%M:%S" if moment.date() == datetime.now().date() else "%Y-%m-%d %H:%M")


def run_command(fn: Callable[[argparse.Namespace, Clients], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command; what goes wrong is one line on stderr and exit code 1 (errors are
    mapped here, once, not in each command)."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args, Clients(args))
        except CliError as e:
            message = str(e)
        except ClientError as e:
            error = e.response.get("Error", {})
            message = f"{error.get('Code', 'Error')}: {error.get('Message', '')}"
        except NoCredentialsError:
            message = ("no AWS credentials: configure them as for the AWS CLI (a local stack takes "
                       "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local unless given other keys)")
        except EndpointConnectionError as e:
            message = f"{e}: is that the endpoint? (`batchplane local up` starts one on this machine)"
        except BotoCoreError as e:  # an unknown profile, a bad parameter ...
            message = str(e)
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:  # `batchplane jobs | head`: the reader has read enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            return 1
        print(f"batchplane: {message}", file=sys.stderr)
        return 1

    return run
