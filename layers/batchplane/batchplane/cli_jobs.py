"""``batchplane submit``, ``jobs`` (``ls``), ``describe``, ``cancel``, ``terminate``,
``logs``, ``queues``, ``envs`` and ``wait``: jobs from the command line.

They talk to any batchplane endpoint, local or deployed, with the standard AWS settings
(``--endpoint-url`` or AWS_ENDPOINT_URL, credentials, ``--profile``, ``--region``) and
only through the public Batch API and CloudWatch Logs, as any other client would. Tables
and progress are for people; ``--output json`` is for scripts."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import costing
from .dashboard.server import add_parser as add_dashboard
from .domain.cost import JobCost, PriceTableError, format_usd
from .endpoint import (
    ACTIVE,
    ENDED,
    LOG_GROUP,
    SNAPSHOT_MAX,
    Clients,
    CliError,
    array_size,
    describe_job,
    describe_jobs,
    fold_arrays,
    job_queues,
    list_queue,
    log_stream,
    read_log,
    run_command,
    when,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

COLOURS = {"SUCCEEDED": "green", "FAILED": "red", "RUNNING": "cyan", "STARTING": "cyan", "RUNNABLE": "yellow"}
POLL_SECONDS = (0.1, 1.0)  # the first pause between two polls and the longest
# CloudWatch Logs takes lines in asynchronously: the last ones can land just after the
# job has ended, so a reader keeps reading until this long after the end brings nothing.
LOG_SETTLE_SECONDS = 0.5
MAX_EXIT_STATUS = 255  # a process's exit status is one byte

# Into a pipe or a file, a table keeps its natural width (rich would fit it into 80 columns).
out = Console(width=None if sys.stdout.isatty() else 10_000)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 10_000)


# -- reading jobs -----------------------------------------------------------------------


def exit_code(job: dict[str, Any]) -> int:
    """The command's exit code for an ended job: 0 when it SUCCEEDED, else the container's
    exit code, or 1 when it has none (it never ran, it timed out ...)."""
    if job["status"] == "SUCCEEDED":
        return 0
    code = (job.get("container") or {}).get("exitCode")
    return code if isinstance(code, int) and 0 < code <= MAX_EXIT_STATUS else 1


def pauses() -> Iterator[float]:
    """The pauses between polls: short at first (local jobs end in milliseconds), then
    longer (jobs on AWS take minutes, and each poll is a request)."""
    pause, longest = POLL_SECONDS
    while True:
        yield pause
        pause = min(pause * 2, longest)


def follow(aws: Clients, job_id: str, on_lines: Callable[[str, list[str]], None],
           on_job: Callable[[dict[str, Any]], None] = lambda _: None) -> dict[str, Any]:
    """Poll the job until it has ended and its last log lines have had time to arrive.
    ``on_job`` sees the job at each poll, ``on_lines`` the new lines of its current
    attempt's stream (a retried job starts a new one). Returns the ended job."""
    stream, token, ended_at = None, None, None
    pace = pauses()
    while True:
        job = describe_job(aws.batch, job_id)
        on_job(job)
        if log_stream(job) != stream:
            stream, token = log_stream(job), None
        lines: list[str] = []
        if stream:
            lines, token = read_log(aws.logs, stream, token)
            if lines:
                on_lines(stream, lines)
        if job["status"] in ENDED:
            ended_at = ended_at or time.monotonic()
            if stream is None or (not lines and time.monotonic() - ended_at >= LOG_SETTLE_SECONDS):
                return job
        time.sleep(next(pace) if ended_at is None else LOG_SETTLE_SECONDS / 2)


# -- showing them -----------------------------------------------------------------------


def status_text(status: str) -> str:
    colour = COLOURS.get(status)
    return f"[{colour}]{status}[/{colour}]" if colour else status


def counts_text(job: dict[str, Any]) -> str:
    """An array parent's statusSummary: "3 SUCCEEDED, 2 RUNNING"."""
    summary = (job.get("arrayProperties") or {}).get("statusSummary") or {}
    return ", ".join(f"{n} {s}" for s, n in summary.items() if n)


def children_text(job: dict[str, Any]) -> str:
    counts = counts_text(job)
    return f"{array_size(job)} children" + (f": {counts}" if counts else "")


def detail(job: dict[str, Any]) -> str:
    """What else a row should say: an array's children, an ended job's exit code, or why
    it is where it is."""
    if array_size(job):
        return children_text(job)
    code = (job.get("container") or {}).get("exitCode")
    if job["status"] in ENDED and code is not None:
        return f"exit {code}"
    return job.get("statusReason") or ""


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def jobs_table(rows: list[dict[str, Any]], more: bool) -> Table:
    table = Table(box=None, header_style="bold", caption="more jobs: raise --limit" if more else None)
    # In a narrow terminal names and details shrink; IDs (to copy), statuses and times do not.
    table.add_column("JOB ID", no_wrap=True, min_width=36)
    table.add_column("NAME", no_wrap=True, overflow="ellipsis", min_width=8)
    table.add_column("QUEUE", no_wrap=True, overflow="ellipsis")
    table.add_column("STATUS", no_wrap=True, min_width=9)
    table.add_column("CREATED", no_wrap=True, min_width=8)
    table.add_column("STARTED", no_wrap=True, min_width=8)
    table.add_column("DETAIL", no_wrap=True, overflow="ellipsis")
    for r in rows:
        table.add_row(r["jobId"], r["jobName"], r["jobQueue"], status_text(r["status"]),
                      when(r.get("createdAt")), when(r.get("startedAt")), detail(r))
    return table


def job_table(job: dict[str, Any], cost: JobCost | None = None) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    container = job.get("container") or {}
    fields = [
        ("job ID", job["jobId"]),
        ("name", job["jobName"]),
        ("queue", job["jobQueue"].rpartition("/")[2]),
        ("definition", job["jobDefinition"].rpartition("/")[2]),
        ("status", status_text(job["status"])),
        ("reason", job.get("statusReason")),
        ("created", when(job.get("createdAt"))),
        ("started", when(job.get("startedAt"))),
        ("stopped", when(job.get("stoppedAt"))),
        ("exit code", container.get("exitCode")),
        ("attempts", len(job.get("attempts") or []) or None),
        ("log stream", log_stream(job)),
        ("depends on", ", ".join(d["jobId"] for d in job.get("dependsOn") or [])),
        ("array", children_text(job) if array_size(job) else None),
        ("command", " ".join(container.get("command") or [])),
    ]
    if cost is not None:
        so_far = "" if cost.final else " so far"
        fields += [("compute cost", f"{format_usd(cost.compute_usd)}{so_far} ({cost.basis})"),
                   ("control plane", f"{format_usd(cost.control_plane_usd)} (the cost meter's share)")]
    for name, value in fields:
        if value not in (None, ""):
            table.add_row(name, value if name == "status" else escape(str(value)))
    return table


# -- the commands -----------------------------------------------------------------------


def submit(args: argparse.Namespace, aws: Clients) -> int:
    """SubmitJob; with --wait, the job's exit code."""
    request: dict[str, Any] = {
        "jobName": args.name or args.definition.rpartition("/")[2].partition(":")[0],
        "jobQueue": args.queue,
        "jobDefinition": args.definition,
    }
    if args.array_size:
        request["arrayProperties"] = {"size": args.array_size}
    if args.depends_on:
        request["dependsOn"] = [{"jobId": j} for j in args.depends_on]
    overrides: dict[str, Any] = {}
    if args.container_command:
        overrides["command"] = args.container_command
    if args.env:
        overrides["environment"] = [{"name": k, "value": v} for k, v in args.env]
    if overrides:
        request["containerOverrides"] = overrides
    job_id = aws.batch.submit_job(**request)["jobId"]
    print(job_id, flush=True)  # alone on stdout: JOB=$(batchplane submit ...)
    if not args.wait:
        return 0
    if array_size(request):
        return wait_for(aws, [job_id])
    return wait_one(aws, job_id)


def wait_one(aws: Clients, job_id: str) -> int:
    """Wait with a live status line, then print the last attempt's log lines."""
    lines: dict[str, list[str]] = {}
    last = ""
    started = time.monotonic()
    with err.status(f"{job_id} SUBMITTED") as line:

        def on_job(job: dict[str, Any]) -> None:
            nonlocal last
            if job["status"] != last:  # each change on a line of its own, the live line below
                err.print(f"{datetime.now():%H:%M:%S} {job['jobName']} {job_id} {status_text(job['status'])}")
                last = job["status"]
            line.update(f"{job_id} {status_text(job['status'])} ({time.monotonic() - started:.0f} s)")

        job = follow(aws, job_id, lambda stream, new: lines.setdefault(stream, []).extend(new), on_job)
    for message in lines.get(log_stream(job) or "", []):
        print(message)
    code = exit_code(job)
    if code:
        err.print(f"{job_id} FAILED: {job.get('statusReason', '')} (exit code {code})", markup=False)
    return code


def jobs(args: argparse.Namespace, aws: Clients) -> int:
    """The jobs of the queues (every queue by default), newest first, arrays folded."""
    statuses = [s for text in args.status for s in text.upper().split(",") if s]
    unknown = sorted(set(statuses) - set(ACTIVE + ENDED))
    if unknown:
        raise CliError(f"unknown status {', '.join(unknown)}: choose from {', '.join(ACTIVE + ENDED)}")
    names = args.queue or [q["jobQueueName"] for q in job_queues(aws.batch)]

    def rows() -> tuple[list[dict[str, Any]], bool]:
        found = [s for q in names for s in list_queue(aws.batch, q, statuses, args.limit)]
        folded = sorted(fold_arrays(aws.batch, found), key=lambda r: -r.get("createdAt", 0))
        return folded[: args.limit], len(folded) > args.limit

    listed, more = rows()
    if args.output == "json":
        print_json(listed)
        return 0
    if not args.watch:
        out.print(jobs_table(listed, more))
        return 0
    try:
        with Live(jobs_table(listed, more), console=out, auto_refresh=False) as live:
            while any(r["status"] in ACTIVE for r in listed):
                time.sleep(args.interval)
                listed, more = rows()
                live.update(jobs_table(listed, more), refresh=True)
    except KeyboardInterrupt:
        pass  # the way to stop watching
    return 0


def describe(args: argparse.Namespace, aws: Clients) -> int:
    """One job as DescribeJobs shows it, with its cost (domain/cost.py)."""
    job = describe_job(aws.batch, args.job)
    cost = costing.Costs(aws.batch, prices(args)).of(job)
    if args.output == "json":
        print_json({**job, "cost": costing.cost_json(cost)})
    else:
        out.print(job_table(job, cost))
    return 0


def prices(args: argparse.Namespace) -> Any:
    try:
        return costing.load_prices(args.prices)
    except PriceTableError as e:
        raise CliError(str(e)) from None


def costs(args: argparse.Namespace, aws: Clients) -> int:
    """Ended jobs' cost summed per queue and per share identifier."""
    names = args.queue or [q["jobQueueName"] for q in job_queues(aws.batch)]
    by_queue, by_share = costing.Costs(aws.batch, prices(args)).summary(names)
    if args.output == "json":
        print_json({"byQueue": {k: costing.total_json(t) for k, t in by_queue.items()},
                    "byShareIdentifier": {k: costing.total_json(t) for k, t in by_share.items()}})
        return 0
    for title, found in (("QUEUE", by_queue), ("SHARE IDENTIFIER", by_share)):
        table = Table(box=None, header_style="bold", caption_justify="left",
                      caption="array children counted, not their parents" if title == "QUEUE" else None)
        for column in (title, "JOBS", "PRICED", "RUN TIME", "COMPUTE", "CONTROL PLANE", "TOTAL"):
            table.add_column(column, no_wrap=True, justify="left" if column == title else "right")
        for key, t in sorted(found.items()):
            table.add_row(escape(key), str(t.jobs), str(t.priced), f"{t.seconds:.1f} s", format_usd(t.compute_usd),
                          format_usd(t.control_plane_usd), format_usd(t.total_usd))
        out.print(table)
    return 0


def cancel(args: argparse.Namespace, aws: Clients) -> int:
    job = describe_job(aws.batch, args.job)  # CancelJob answers 200 for a job it does not know
    aws.batch.cancel_job(jobId=job["jobId"], reason=args.reason)
    err.print(f"cancel requested for {job['jobName']} {job['jobId']} (it was {job['status']})", markup=False)
    if job["status"] in ("STARTING", "RUNNING"):
        err.print("cancel leaves a STARTING or RUNNING job running, as AWS Batch does: `batchplane terminate` "
                  "stops it", markup=False)
    return 0


def terminate(args: argparse.Namespace, aws: Clients) -> int:
    job = describe_job(aws.batch, args.job)  # TerminateJob answers 200 for a job it does not know
    aws.batch.terminate_job(jobId=job["jobId"], reason=args.reason)
    err.print(f"terminate requested for {job['jobName']} {job['jobId']} (it was {job['status']})", markup=False)
    return 0


def logs(args: argparse.Namespace, aws: Clients) -> int:
    """The latest attempt's log; with -f, new lines until the job ends."""
    job = describe_job(aws.batch, args.job)
    if array_size(job):
        raise CliError(f"{args.job} is an array job: its children have the logs; name one as {args.job}:INDEX")
    if not args.follow:
        stream = log_stream(job)
        if stream is None:
            raise CliError(f"{args.job} has no log stream yet (it is {job['status']}): "
                           "it has one once it starts; -f waits for it")
        for message in read_log(aws.logs, stream, None)[0]:
            print(message)
        return 0

    current = log_stream(job)

    def show(stream: str, lines: list[str]) -> None:
        nonlocal current
        if current and stream != current:
            err.print(f"-- the job is retried: its new attempt logs to {stream}", markup=False)
        current = stream
        for message in lines:
            print(message, flush=True)  # at once, even into a pipe

    try:
        follow(aws, job["jobId"], show)
    except KeyboardInterrupt:
        pass  # the way to stop following
    return 0


def queues(args: argparse.Namespace, aws: Clients) -> int:
    """Job queues, each with its GetJobQueueSnapshot (front of the queue, vCPUs in use)."""
    found = job_queues(aws.batch, args.queues or None)
    for queue in found:
        snapshot = aws.batch.get_job_queue_snapshot(jobQueue=queue["jobQueueArn"])
        snapshot.pop("ResponseMetadata", None)
        queue["snapshot"] = snapshot
    if args.output == "json":
        print_json(found)
        return 0
    table = Table(box=None, header_style="bold")
    for column in ("QUEUE", "STATE", "STATUS", "PRIORITY", "COMPUTE ENVIRONMENTS", "RUNNABLE", "VCPUS IN USE"):
        table.add_column(column, no_wrap=True)
    for q in found:
        front = q["snapshot"].get("frontOfQueue", {}).get("jobs", [])
        usage = q["snapshot"].get("queueUtilization", {}).get("totalCapacityUsage", [])
        order = sorted(q.get("computeEnvironmentOrder", []), key=lambda o: o["order"])
        table.add_row(
            q["jobQueueName"], q["state"], q["status"], str(q["priority"]),
            ", ".join(o["computeEnvironment"].rpartition("/")[2] for o in order),
            f"{len(front)}+" if len(front) >= SNAPSHOT_MAX else str(len(front)),  # the snapshot shows the first 100
            " ".join(f"{u['quantity']:g}" for u in usage if u.get("capacityUnit") == "VCPU"),
        )
    out.print(table)
    return 0


def envs(args: argparse.Namespace, aws: Clients) -> int:
    """Compute environments."""
    request = {"computeEnvironments": args.envs} if args.envs else {}
    pages = aws.batch.get_paginator("describe_compute_environments").paginate(**request)
    found = [ce for page in pages for ce in page["computeEnvironments"]]
    if args.output == "json":
        print_json(found)
        return 0
    table = Table(box=None, header_style="bold")
    for column in ("COMPUTE ENVIRONMENT", "TYPE", "PROVISIONING", "STATE", "STATUS", "VCPUS MIN/DESIRED/MAX"):
        table.add_column(column, no_wrap=True)
    table.add_column("REASON", overflow="ellipsis", no_wrap=True)
    for ce in found:
        resources = ce.get("computeResources") or {}
        vcpus = "/".join(str(resources.get(k, "-")) for k in ("minvCpus", "desiredvCpus", "maxvCpus"))
        table.add_row(ce["computeEnvironmentName"], ce.get("type", ""), resources.get("type", ""),
                      ce.get("state", ""), ce.get("status", ""), vcpus if resources else "", ce.get("statusReason", ""))
    out.print(table)
    return 0


def wait(args: argparse.Namespace, aws: Clients) -> int:
    return wait_for(aws, args.jobs)


def wait_for(aws: Clients, job_ids: list[str]) -> int:
    """A progress bar per job (an array's counts its children done), a line per job when
    all have ended; 0 if every one SUCCEEDED, else 1."""
    found = describe_jobs(aws.batch, job_ids)

    def done(job: dict[str, Any]) -> int:
        if array_size(job):
            summary = job["arrayProperties"].get("statusSummary") or {}
            return sum(summary.get(s, 0) for s in ENDED)
        return int(job["status"] in ENDED)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn())
    with Progress(*columns, console=err) as progress:
        bars = {j["jobId"]: progress.add_task(f"{j['jobName']} {j['jobId']}", total=array_size(j) or 1, status="")
                for j in found}
        for pause in pauses():
            for job in found:
                progress.update(bars[job["jobId"]], completed=done(job), status=status_text(job["status"]))
            if all(j["status"] in ENDED for j in found):
                break
            time.sleep(pause)
            found = describe_jobs(aws.batch, [j["jobId"] for j in found])
    for job in found:
        counted = f"  {done(job)}/{array_size(job)} children done: {counts_text(job)}" if array_size(job) else ""
        reason = f"  {job.get('statusReason', '')} (exit code {exit_code(job)})" if job["status"] == "FAILED" else ""
        print(f"{job['jobId']}  {job['jobName']}  {job['status']}{counted}{reason}")
    return 0 if all(j["status"] == "SUCCEEDED" for j in found) else 1


# -- the parsers ------------------------------------------------------------------------


def _key_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def _connection() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--endpoint-url", help="the batchplane API (default: AWS_ENDPOINT_URL_BATCH, "
                        "AWS_ENDPOINT_URL, the profile's endpoint_url); logs come from it too when it is on "
                        "this machine, else from CloudWatch Logs")
    parent.add_argument("--region", help="region (default: the AWS configuration's, else us-east-1)")
    parent.add_argument("--profile", help="AWS profile for credentials and settings")
    return parent


def _output() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--output", choices=("table", "json"), default="table",
                        help="a table for people (default) or JSON for scripts")
    return parent


def add_parsers(sub: Any) -> None:
    """Add the job commands to the ``batchplane`` parser."""
    connection, output = _connection(), _output()

    def command(name: str, fn: Callable[[argparse.Namespace, Clients], int], help: str,
                *, listing: bool = False, **kw: Any) -> argparse.ArgumentParser:
        parents = [connection, output] if listing else [connection]
        parser = sub.add_parser(name, help=help, description=help, parents=parents, **kw)
        parser.set_defaults(func=run_command(fn))
        return parser

    p = command("submit", submit, "submit a job (SubmitJob)")
    p.add_argument("--queue", required=True, help="job queue name or ARN")
    p.add_argument("--definition", required=True, help="job definition: name, name:revision or ARN")
    p.add_argument("--name", help="job name (default: the definition's name)")
    p.add_argument("--array-size", type=int, help="an array job of this many children (2 to 10,000)")
    p.add_argument("--depends-on", action="append", default=[], metavar="JOB", help="a job it waits for (repeatable)")
    p.add_argument("--env", action="append", default=[], type=_key_value, metavar="NAME=VALUE",
                   help="an environment variable of the container (repeatable)")
    p.add_argument("--wait", action="store_true", help="wait for it to end, print its log and exit with its "
                   "exit code (0 SUCCEEDED; the container's exit code, or 1, FAILED)")
    p.add_argument("--command", dest="container_command", nargs=argparse.REMAINDER,
                   help="the container's command instead of the definition's; everything after it is the "
                   "command, so it comes last")

    p = command("jobs", jobs, "list jobs, newest first, arrays folded into one row", listing=True, aliases=["ls"])
    p.add_argument("--queue", action="append", default=[], help="job queue (repeatable; default: every queue)")
    p.add_argument("--status", action="append", default=[], help="only jobs in this status (repeatable or "
                   "comma-separated; default: every status)")
    p.add_argument("--limit", type=int, default=50, help="most jobs to show (default 50)")
    p.add_argument("--watch", action="store_true", help="redraw until Ctrl-C or no job listed is active")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between redraws with --watch (default 2)")

    prices_help = ("price table (default: $BATCHPLANE_PRICES, else batchplane's data/prices.json; "
                   "EC2 prices come from the instance catalog)")
    p = command("describe", describe, "show one job (DescribeJobs) and its cost", listing=True)
    p.add_argument("job", metavar="JOB", help="job ID (an array child as ID:INDEX) or ARN")
    p.add_argument("--prices", metavar="FILE", help=prices_help)

    p = command("costs", costs, "ended jobs' cost summed per queue and per share identifier", listing=True)
    p.add_argument("--queue", action="append", default=[], help="job queue (repeatable; default: every queue)")
    p.add_argument("--prices", metavar="FILE", help=prices_help)

    for name, fn, verb in (("cancel", cancel, "cancel a job not yet started (CancelJob)"),
                           ("terminate", terminate, "stop a job, running or not (TerminateJob)")):
        p = command(name, fn, verb)
        p.add_argument("job", metavar="JOB", help="job ID or ARN")
        p.add_argument("--reason", default=f"{name} from the batchplane command line", help="why (statusReason)")

    p = command("logs", logs, f"print a job's log (its latest attempt's stream in {LOG_GROUP})")
    p.add_argument("job", metavar="JOB", help="job ID (an array child as ID:INDEX) or ARN")
    p.add_argument("-f", "--follow", action="store_true", help="print new lines as they come until the job ends")

    p = command("queues", queues, "list job queues with their use now (GetJobQueueSnapshot)", listing=True)
    p.add_argument("queues", nargs="*", metavar="QUEUE", help="only these (default: every queue)")

    p = command("envs", envs, "list compute environments", listing=True)
    p.add_argument("envs", nargs="*", metavar="ENV", help="only these (default: every compute environment)")

    add_dashboard(sub, connection)

    p = command("wait", wait, "wait for jobs to end; non-zero exit if any FAILED")
    p.add_argument("jobs", nargs="+", metavar="JOB", help="job IDs or ARNs")
