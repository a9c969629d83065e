"""The dashboard's pages, rendered on the server from the public Batch API and CloudWatch
Logs, as any client reads them (the boto3 clients it is given; no private way in).

Each page is plain HTML. Its live part (``<div id="live">``) carries htmx attributes that
fetch it again every second or two and swap it in place, so statuses, progress bars and
log lines move without a reload; a request htmx makes (``HX-Request``) gets that part
alone. A job page stops polling once the job has ended and its last log lines are in.
"""

from __future__ import annotations

import json
import mimetypes
import time
from html import escape
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from .. import costing
from ..domain import arrays, capacity
from ..domain.cost import JobCost, PriceTableError, environment_name, format_usd
from ..endpoint import ACTIVE, ENDED, LOG_GROUP, SNAPSHOT_MAX, array_size, fold_arrays, job_queues, log_stream, when
from . import graph

if TYPE_CHECKING:
    from collections.abc import Callable

STATIC = Path(__file__).with_name("static")
PREFIX = "/dashboard"
STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
LOG_TAIL = 200  # log lines a job page shows (the newest)
LIST_LIMIT = 100  # jobs a listing shows
GRAPH_SCAN = 1000  # newest jobs per queue read to find a job's dependents (the API has no reverse lookup)
GRAPH_MAX = 200  # nodes a graph shows
CHILDREN_SHOWN = 100
FINAL_COSTS_KEPT = 10_000  # ended jobs' costs remembered (an array's takes a DescribeJobs per 100 children)
SETTLE_MS = 3000  # a job page polls this long after the job ended, for its last log lines
REFRESH = {"overview": 2, "jobs": 2, "job": 1, "graph": 2, "costs": 10}  # seconds between refreshes

Response = tuple[int, dict[str, str], bytes]


class NotFound(Exception):
    pass


class Dashboard:
    """``handle(method, target, headers)`` answers one request under /dashboard."""

    def __init__(self, batch: Any, logs: Any, prices_path: str | Path | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.batch = batch
        self.logs = logs
        self.prices_path = prices_path
        self.clock = clock
        self.catalog = capacity.default_catalog()
        self._final_costs: dict[str, JobCost] = {}  # an ended job's cost cannot change

    # -- routing --------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str]) -> Response:  # noqa: PLR0911 - the dashboard's routes: one return a page
        parts = urlsplit(target)
        path = parts.path.removeprefix(PREFIX) or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        fragment = any(k.lower() == "hx-request" for k in headers)
        if method not in ("GET", "HEAD"):
            return _error(405, "The dashboard only reads: use GET.", fragment)
        try:
            if path.startswith("/static/"):
                return self._static(path.removeprefix("/static/"))
            segments = [s for s in path.split("/") if s]
            if not segments:
                return self._page("Queues", "overview", target, self.overview(), fragment)
            if segments == ["jobs"]:
                return self._page("Jobs", "jobs", target, self.jobs(query), fragment)
            if segments == ["costs"]:
                return self._page("Costs", "costs", target, self.costs(), fragment)
            if len(segments) == 2 and segments[0] == "jobs":  # noqa: PLR2004 - the route /jobs/<id>
                html, live = self.job(segments[1])
                return self._page(f"Job {segments[1]}", "job", target, html, fragment, live=live)
            if len(segments) == 3 and segments[0] == "jobs" and segments[2] == "graph":  # noqa: PLR2004 - the route /jobs/<id>/graph
                return self._page(f"Graph of {segments[1]}", "graph", target, self.graph(segments[1]), fragment)
            raise NotFound(f"There is no dashboard page at {path}: see {PREFIX}/ for the queues.")
        except NotFound as e:
            return _error(404, str(e), fragment)
        except PriceTableError as e:
            return _error(400, f"{e}. Fix the file, or unset BATCHPLANE_PRICES to use the packaged table.", fragment)
        except ClientError as e:
            error = e.response.get("Error", {})
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 502)
            return _error(status if HTTPStatus.BAD_REQUEST <= status < HTTPStatus.INTERNAL_SERVER_ERROR else 502,
                          f"The Batch API answered {error.get('Code')}: {error.get('Message')}", fragment)
        except BotoCoreError as e:
            return _error(502, f"The Batch API could not be reached: {e}", fragment)

    def _static(self, name: str) -> Response:
        file = STATIC / name
        if "/" in name or not file.is_file():
            raise NotFound(f"No static file {name!r}.")
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return 200, {"Content-Type": kind, "Cache-Control": "max-age=3600"}, file.read_bytes()

    def _page(self, title: str, kind: str, target: str, body: str, fragment: bool, *, live: bool = True) -> Response:
        """The page, or (for htmx) its live part alone, polling ``target`` while ``live``."""
        poll = (f' hx-get="{escape(target)}" hx-trigger="every {REFRESH[kind]}s" hx-swap="outerHTML"'
                if live else "")
        part = f'<div id="live" data-live="{str(live).lower()}"{poll}>{body}</div>'
        if fragment:
            return _html(part)
        nav = "".join(f'<a href="{PREFIX}{href}">{label}</a>'
                      for href, label in (("/", "Queues"), ("/jobs", "Jobs"), ("/costs", "Costs")))
        return _html(f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{escape(title)} · batchplane</title><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{PREFIX}/static/style.css"><script src="{PREFIX}/static/htmx.min.js"></script>
</head><body><header><a class="brand" href="{PREFIX}/">batchplane</a><nav>{nav}</nav></header>
<main><h1>{escape(title)}</h1>{part}</main></body></html>""")

    # -- reading --------------------------------------------------------------------

    def _prices(self) -> Any:
        return costing.load_prices(self.prices_path)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _describe(self, job_id: str) -> dict[str, Any]:
        found = self.batch.describe_jobs(jobs=[job_id])["jobs"]
        if not found:
            raise NotFound(f"No job {job_id}: DescribeJobs knows none by that ID (an array child is ID:INDEX).")
        return found[0]

    def _environments(self) -> dict[str, dict[str, Any]]:
        pages = self.batch.get_paginator("describe_compute_environments").paginate()
        return {ce["computeEnvironmentName"]: ce for p in pages for ce in p["computeEnvironments"]}

    def _cost(self, costs: costing.Costs, job: dict[str, Any]) -> JobCost:
        cached = self._final_costs.get(job["jobId"])
        if cached is not None:
            return cached
        cost = costs.of(job, self._now_ms())
        if cost.final:
            if len(self._final_costs) >= FINAL_COSTS_KEPT:
                self._final_costs.clear()  # a bound, not an LRU: recomputing one is a few requests
            self._final_costs[job["jobId"]] = cost
        return cost

    # -- pages ----------------------------------------------------------------------

    def overview(self) -> str:
        """Queues with what they run and hold (GetJobQueueSnapshot), compute environments
        with the vCPUs their running jobs use."""
        queues = job_queues(self.batch)
        envs = self._environments()
        in_use: dict[str, float] = dict.fromkeys(envs, 0.0)
        queue_rows = []
        for q in sorted(queues, key=lambda q: (-q["priority"], q["jobQueueName"])):
            snapshot = self.batch.get_job_queue_snapshot(jobQueue=q["jobQueueArn"])
            front = snapshot.get("frontOfQueue", {}).get("jobs", [])
            used = sum(u["quantity"] for u in snapshot.get("queueUtilization", {}).get("totalCapacityUsage", [])
                       if u.get("capacityUnit") == "VCPU")
            order = sorted(q.get("computeEnvironmentOrder", []), key=lambda o: o["order"])
            names = [o["computeEnvironment"].rpartition("/")[2] for o in order]
            ceiling = sum(_max_vcpus(envs[n]) or 0 for n in names if n in envs)
            running = [s["jobId"] for status in ("STARTING", "RUNNING")
                       for s in _list(self.batch, jobQueue=q["jobQueueName"], jobStatus=status)]
            for job in costing.describe_all(self.batch, running):
                name = environment_name(job, q, envs)
                if name:
                    in_use[name] += capacity.Shape.of(job.get("container") or {}).mvcpus / 1000
            link = f"{PREFIX}/jobs?{urlencode({'queue': q['jobQueueName']})}"
            queue_rows.append(
                f'<tr data-queue="{escape(q["jobQueueName"])}">'
                f'<td><a href="{link}">{escape(q["jobQueueName"])}</a></td>'
                f'<td>{escape(q["state"])} / {escape(q["status"])}</td><td>{q["priority"]}</td>'
                f'<td>{escape(", ".join(names))}</td><td class="num runnable">'
                f'{len(front)}{"+" if len(front) >= SNAPSHOT_MAX else ""}</td>'
                f'<td>{_meter(used, ceiling, "vCPU")}</td></tr>')
        env_rows = []
        for name, ce in sorted(envs.items()):
            resources = ce.get("computeResources") or {}
            env_rows.append(
                f'<tr data-environment="{escape(name)}"><td>{escape(name)}</td><td>{escape(ce.get("type", ""))}</td>'
                f'<td>{escape(resources.get("type", ""))}</td><td>{escape(ce.get("state", ""))} / '
                f'{escape(ce.get("status", ""))}</td><td>{escape(", ".join(resources.get("instanceTypes") or []))}</td>'
                f'<td>{_meter(in_use[name], _max_vcpus(ce), "vCPU")}</td></tr>')
        return (_table("queues", ("Job queue", "State", "Priority", "Compute environments", "Runnable",
                                  "vCPUs in use"), queue_rows, "No job queues yet: CreateJobQueue makes one.")
                + "<h2>Compute environments</h2>"
                + _table("environments", ("Compute environment", "Type", "Resources", "State", "Instance types",
                                          "vCPUs in use"), env_rows,
                         "No compute environments yet: CreateComputeEnvironment makes one."))

    def jobs(self, query: dict[str, str]) -> str:
        """Jobs filtered by queue, status and name (ListJobs), newest first, arrays folded
        into one row with their progress."""
        queues = [q["jobQueueName"] for q in job_queues(self.batch)]
        chosen = query.get("queue") or ""
        status = (query.get("status") or "").upper()
        name = (query.get("name") or "").strip()
        if chosen and chosen not in queues:
            raise NotFound(f"No job queue {chosen!r}: choose one of {', '.join(queues) or 'none (make one first)'}.")
        if status and status not in STATUSES:
            raise NotFound(f"No status {status!r}: choose one of {', '.join(STATUSES)}.")
        summaries: list[dict[str, Any]] = []
        for queue in [chosen] if chosen else queues:
            request: dict[str, Any]
            if name:  # with a filter ListJobs lists every status; the status is chosen here
                request = {"filters": [{"name": "JOB_NAME", "values": [name if name.endswith("*") else name + "*"]}]}
            elif status:
                request = {"jobStatus": status}
            else:
                request = {"filters": [{"name": "AFTER_CREATED_AT", "values": ["0"]}]}
            found = 0
            for s in _list(self.batch, jobQueue=queue, **request):
                if status and s["status"] != status:
                    continue
                summaries.append({**s, "jobQueue": queue})
                found += ":" not in s["jobId"]
                if found >= LIST_LIMIT:
                    break
        rows = sorted(fold_arrays(self.batch, summaries), key=lambda r: -r.get("createdAt", 0))[:LIST_LIMIT]
        options = "".join(f'<option{" selected" if q == chosen else ""}>{escape(q)}</option>' for q in queues)
        states = "".join(f'<option{" selected" if s == status else ""}>{s}</option>' for s in STATUSES)
        form = (f'<form class="filters" method="get" action="{PREFIX}/jobs">'
                f'<label>Queue <select name="queue"><option value="">every queue</option>{options}</select></label>'
                f'<label>Status <select name="status"><option value="">every status</option>{states}</select></label>'
                f'<label>Name <input name="name" value="{escape(name)}" placeholder="prefix"></label>'
                '<button>Filter</button></form>')
        body = []
        for r in rows:
            size = array_size(r)
            detail = _progress(r, small=True) if size else escape(_detail(r))
            body.append(
                f'<tr data-job-id="{escape(r["jobId"])}" data-status="{r["status"]}">'
                f'<td><a href="{_job_href(r["jobId"])}">{escape(r["jobName"])}</a></td>'
                f'<td class="mono">{escape(r["jobId"])}</td><td>{escape(r["jobQueue"])}</td>'
                f'<td>{_badge(r["status"])}</td>'
                f'<td>{when(r.get("createdAt"))}</td><td>{when(r.get("startedAt"))}</td>'
                f'<td>{_duration(r, self._now_ms())}</td><td>{detail}</td></tr>')
        return form + _table("jobs", ("Name", "Job ID", "Queue", "Status", "Created", "Started", "Run time",
                                      "Detail"), body, "No jobs match.")

    def job(self, job_id: str) -> tuple[str, bool]:
        """A job's page (an array's has its progress and histogram); and whether it is
        still live (worth polling)."""
        job = self._describe(job_id)
        now = self._now_ms()
        costs = costing.Costs(self.batch, self._prices(), self.catalog)
        cost = self._cost(costs, job)
        container = job.get("container") or {}
        fields = [
            ("Status", _badge(job["status"])),
            ("Reason", escape(job.get("statusReason") or "")),
            ("Name", escape(job["jobName"])),
            ("Job ID", f'<span class="mono">{escape(job["jobId"])}</span>'),
            ("Queue", f'<a href="{PREFIX}/jobs?{urlencode({"queue": job["jobQueue"].rpartition("/")[2]})}">'
                      f'{escape(job["jobQueue"].rpartition("/")[2])}</a>'),
            ("Definition", escape(job["jobDefinition"].rpartition("/")[2])),
            ("Share", escape(job.get("shareIdentifier") or "")),
            ("Created", when(job.get("createdAt"))),
            ("Started", when(job.get("startedAt"))),
            ("Stopped", when(job.get("stoppedAt"))),
            ("Run time", _duration(job, now)),
            ("Exit code", escape(str(container.get("exitCode", "")))),
            ("Command", f'<span class="mono">{escape(" ".join(container.get("command") or []))}</span>'),
            ("Compute cost", f'<span id="compute-cost">{format_usd(cost.compute_usd)}</span>'
                             f'{"" if cost.final else " so far"} <small>{escape(cost.basis)}</small>'),
            ("Control plane", f'<span id="control-cost">{format_usd(cost.control_plane_usd)}</span> '
                              "<small>the cost meter's share</small>"),
        ]
        if "index" in (job.get("arrayProperties") or {}):
            parent = job["jobId"].rpartition(":")[0]
            fields.append(("Array", f'child {job["arrayProperties"]["index"]} of <a href="{_job_href(parent)}">'
                                    f'{escape(parent)}</a>'))
        deps = ", ".join(f'<a href="{_job_href(d["jobId"])}">{escape(d["jobId"])}</a>'
                         + (f' ({escape(d["type"])})' if d.get("type") else "") for d in job.get("dependsOn") or [])
        if deps:
            fields.append(("Depends on", deps))
        info = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in fields if v)
        parts = [f'<p><a href="{_job_href(job["jobId"])}/graph">Dependency graph</a></p>',
                 f'<table class="fields" id="job" data-status="{job["status"]}">{info}</table>']
        ended_ms = now - int(job.get("stoppedAt") or now)
        if arrays.is_parent(job):
            parts.append(self._array(job))
            live = job["status"] not in ENDED or ended_ms < SETTLE_MS
        else:
            parts.append(_attempts(job, now))
            lines, stream = self._log_tail(job)
            note = f"the newest {LOG_TAIL} lines of {stream}" if stream else "no log stream yet: it starts with the job"
            parts.append(f'<h2>Log</h2><p><small>{escape(note)} ({LOG_GROUP})</small></p>'
                         f'<pre id="log">{escape(chr(10).join(lines))}</pre>')
            live = job["status"] in ACTIVE or ended_ms < SETTLE_MS
        return "".join(parts), live

    def _array(self, job: dict[str, Any]) -> str:
        summary = job["arrayProperties"].get("statusSummary") or {}
        size = array_size(job) or 0
        histogram = "".join(
            f'<div class="bar-row" data-status="{s}"><span class="label">{s}</span>'
            f'<span class="bar"><span class="fill s-{s}" style="width:{100 * summary.get(s, 0) / max(size, 1):.1f}%">'
            f'</span></span><span class="count">{summary.get(s, 0)}</span></div>' for s in STATUSES)
        children = list(_list(self.batch, arrayJobId=job["jobId"],
                              filters=[{"name": "AFTER_CREATED_AT", "values": ["0"]}], limit=CHILDREN_SHOWN))
        children.sort(key=lambda c: (c.get("arrayProperties") or {}).get("index", 0))
        rows = [f'<tr data-job-id="{escape(c["jobId"])}" data-status="{c["status"]}">'
                f'<td><a href="{_job_href(c["jobId"])}">{(c.get("arrayProperties") or {}).get("index", "")}</a></td>'
                f'<td>{_badge(c["status"])}</td><td>{when(c.get("startedAt"))}</td>'
                f'<td>{_duration(c, self._now_ms())}</td><td>{escape(_detail(c))}</td></tr>' for c in children]
        shown = f" (the first {CHILDREN_SHOWN})" if size > CHILDREN_SHOWN else ""
        return (f"<h2>Progress</h2>{_progress(job)}<h2>Children by status</h2><div id='histogram'>{histogram}</div>"
                f"<h2>Children{shown}</h2>"
                + _table("children", ("Index", "Status", "Started", "Run time", "Detail"), rows, "No children yet."))

    def _log_tail(self, job: dict[str, Any]) -> tuple[list[str], str | None]:
        stream = log_stream(job)
        if not stream:
            return [], None
        try:
            page = self.logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=False,
                                            limit=LOG_TAIL)
        except ClientError as e:
            if e.response["Error"]["Code"] == "ResourceNotFoundException":
                return [], stream  # the stream is made as the task starts
            raise
        return [event["message"] for event in page["events"]], stream

    def graph(self, job_id: str) -> str:
        """The job, what it waits for (dependsOn, followed upstream) and what waits for it
        (found among the newest jobs of every queue created after it)."""
        focus = self._describe(job_id)
        jobs: dict[str, dict[str, Any]] = {focus["jobId"]: focus}
        frontier = [focus]
        while frontier and len(jobs) < GRAPH_MAX:  # upstream
            wanted = sorted({d["jobId"] for j in frontier for d in j.get("dependsOn") or []} - jobs.keys())
            frontier = costing.describe_all(self.batch, wanted) if wanted else []
            jobs.update((j["jobId"], j) for j in frontier)
        dependents: dict[str, list[dict[str, Any]]] = {}
        after = str(int(focus.get("createdAt") or 0) - 1)
        for queue in job_queues(self.batch):
            ids = [s["jobId"] for s in _list(self.batch, jobQueue=queue["jobQueueName"], limit=GRAPH_SCAN,
                                              filters=[{"name": "AFTER_CREATED_AT", "values": [after]}])
                   if ":" not in s["jobId"]]
            for job in costing.describe_all(self.batch, ids):
                for d in job.get("dependsOn") or []:
                    dependents.setdefault(d["jobId"], []).append(job)
        frontier = [focus]
        while frontier and len(jobs) < GRAPH_MAX:  # downstream
            found = [j for f in frontier for j in dependents.get(f["jobId"], []) if j["jobId"] not in jobs]
            jobs.update((j["jobId"], j) for j in found)
            frontier = found
        edges = sorted({(d["jobId"], j["jobId"]) for j in jobs.values() for d in j.get("dependsOn") or []
                        if d["jobId"] in jobs})
        nodes = [graph.Node(j["jobId"], j["jobName"], j["status"], _array_done(j), _job_href(j["jobId"]))
                 for j in jobs.values()]
        legend = (f'<p><small>{len(nodes)} jobs, {len(edges)} dependencies; left to right in the order they run. '
                  f'Dependents are looked for among the {GRAPH_SCAN} newest jobs of each queue.</small></p>')
        return legend + f'<div class="graph">{graph.svg(nodes, edges, focus["jobId"])}</div>'

    def costs(self) -> str:
        """Ended jobs' cost per queue and per share identifier."""
        queues = [q["jobQueueName"] for q in job_queues(self.batch)]
        by_queue, by_share = costing.Costs(self.batch, self._prices(), self.catalog).summary(queues)
        out = []
        for title, found, key in (("Job queue", by_queue, "queue"), ("Share identifier", by_share, "share")):
            rows = [f'<tr data-{key}="{escape(k)}"><td>{escape(k)}</td><td class="num">{t.jobs}</td>'
                    f'<td class="num">{t.priced}</td><td class="num">{t.seconds:.1f} s</td>'
                    f'<td class="num">{format_usd(t.compute_usd)}</td><td class="num">{format_usd(t.control_plane_usd)}'
                    f'</td><td class="num total">{format_usd(t.total_usd)}</td></tr>' for k, t in sorted(found.items())]
            out.append(_table(f"costs-by-{key}", (title, "Ended jobs", "Priced", "Run time", "Compute",
                                                  "Control plane", "Total"), rows, "No ended jobs yet."))
        return ("<p><small>Compute: instance or Fargate price x the job's share x run time (the instance catalog "
                "and the price table); control plane: the cost meter's figures per job. Array children are counted, "
                "not their parents.</small></p>" + out[0] + "<h2>By share identifier</h2>" + out[1])


# -- pieces -----------------------------------------------------------------------------


def _list(batch: Any, limit: int | None = None, **request: Any) -> Any:
    count = 0
    for page in batch.get_paginator("list_jobs").paginate(**request, PaginationConfig={"PageSize": 1000}):
        for summary in page["jobSummaryList"]:
            yield summary
            count += 1
            if limit is not None and count >= limit:
                return


def _max_vcpus(ce: dict[str, Any]) -> int | None:
    if ce.get("type") == "MANAGED":
        return (ce.get("computeResources") or {}).get("maxvCpus")
    return ce.get("unmanagedvCpus")


def _job_href(job_id: str) -> str:
    return f"{PREFIX}/jobs/{quote(job_id, safe=':')}"


def _badge(status: str) -> str:
    return f'<span class="badge s-{escape(status)}">{escape(status)}</span>'


def _meter(used: float, ceiling: int | None, unit: str) -> str:
    if not ceiling:
        return f"{used:g} {unit}"
    pct = min(100.0, 100 * used / ceiling)
    return (f'<span class="meter" title="{pct:.0f}%"><span class="fill" style="width:{pct:.1f}%"></span></span> '
            f'<span class="used">{used:g}</span> / {ceiling} {unit}')


def _array_done(job: dict[str, Any]) -> str:
    size = array_size(job)
    if not size:
        return ""
    summary = (job.get("arrayProperties") or {}).get("statusSummary") or {}
    return f"{sum(summary.get(s, 0) for s in ENDED)}/{size} done"


def _progress(job: dict[str, Any], *, small: bool = False) -> str:
    """An array's children done (ended) of its size, as a bar and as text."""
    summary = (job.get("arrayProperties") or {}).get("statusSummary") or {}
    size = array_size(job) or 0
    done = sum(summary.get(s, 0) for s in ENDED)
    failed = summary.get("FAILED", 0)
    pct = 100 * done / max(size, 1)
    text = f"{done}/{size} ({pct:.0f}%)" + (f", {failed} failed" if failed else "")
    return (f'<div class="progress{" small" if small else ""}" data-done="{done}" data-size="{size}" '
            f'data-percent="{pct:.0f}" role="progressbar" aria-valuenow="{pct:.0f}" aria-valuemin="0" '
            f'aria-valuemax="100"><span class="fill" style="width:{pct:.1f}%"></span>'
            f'<span class="text">{text}</span></div>')


def _detail(job: dict[str, Any]) -> str:
    code = (job.get("container") or {}).get("exitCode")
    if job["status"] in ENDED and code is not None:
        return f"exit {code}"
    return job.get("statusReason") or ""


def _duration(job: dict[str, Any], now: int) -> str:
    started = job.get("startedAt")
    if not started:
        return ""
    seconds = (int(job.get("stoppedAt") or now) - int(started)) / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"  # noqa: PLR2004 - display: under two minutes in seconds, else in minutes


def _attempts(job: dict[str, Any], now: int) -> str:
    rows = []
    for n, a in enumerate(job.get("attempts") or [], 1):
        c = a.get("container") or {}
        rows.append(f"<tr><td>{n}</td><td>{when(a.get('startedAt'))}</td><td>{when(a.get('stoppedAt'))}</td>"
                    f"<td>{_duration(a, now)}</td><td>{escape(str(c.get('exitCode', '')))}</td>"
                    f"<td>{escape(a.get('statusReason') or '')}</td><td>{escape(c.get('reason') or '')}</td>"
                    f"<td class='mono'>{escape(c.get('logStreamName') or '')}</td></tr>")
    return "<h2>Attempts</h2>" + _table("attempts", ("#", "Started", "Stopped", "Run time", "Exit code",
                                                     "Status reason", "Container reason", "Log stream"), rows,
                                        "No attempt has ended yet.")


def _table(table_id: str, headers: tuple[str, ...], rows: list[str], empty: str) -> str:
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join(rows) or f'<tr><td colspan="{len(headers)}" class="empty">{escape(empty)}</td></tr>'
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _html(text: str) -> Response:
    return 200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}, text.encode()


def _error(status: int, message: str, fragment: bool) -> Response:
    if fragment:  # htmx swaps nothing in on an error: the page keeps what it shows
        body = json.dumps({"message": message})
        return status, {"Content-Type": "application/json"}, body.encode()
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{status} · batchplane</title>'
            f'<link rel="stylesheet" href="{PREFIX}/static/style.css"></head><body><header><a class="brand" '
            f'href="{PREFIX}/">batchplane</a></header><main><h1>{status}</h1><p class="error">{escape(message)}</p>'
            "</main></body></html>")
    return status, {"Content-Type": "text/html; charset=utf-8"}, page.encode()
